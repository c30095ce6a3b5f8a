//! Key handling: the cache's cooldowns and single flight, JWKS parsing, HTTP fetching rules.

mod cache;
mod http;
mod jwk;
