//! Bad input never panics and is never accepted: arbitrary strings, and tokens that are valid
//! except for arbitrary mutations, all end in a `VerifyError`.

use proptest::prelude::*;

use super::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// One verifier and key for every case: RSA key generation per case would dominate the run.
fn setup() -> &'static (Verifier, TestKey) {
    static SETUP: std::sync::OnceLock<(Verifier, TestKey)> = std::sync::OnceLock::new();
    SETUP.get_or_init(rsa_setup)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_are_refused_without_panicking(s in "\\PC{0,300}|[A-Za-z0-9_.=-]{0,300}") {
        let (v, _) = setup();
        prop_assert!(runtime().block_on(v.verify(&s, NOW)).is_err());
    }

    #[test]
    fn any_single_byte_change_to_a_valid_token_is_refused(pos in any::<prop::sample::Index>(), byte in 0x21u8..0x7f) {
        let (v, key) = setup();
        let token = key.token("RS256", &claims());
        let rt = runtime();
        prop_assume!(rt.block_on(v.verify(&token, NOW)).is_ok());
        let mut bytes = token.into_bytes();
        let i = pos.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        let mutated = String::from_utf8(bytes).unwrap();
        prop_assert!(rt.block_on(v.verify(&mutated, NOW)).is_err(), "accepted a mutated token");
    }
}
