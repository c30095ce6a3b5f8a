//! Key handling: the cache's cooldowns and single flight, scheduled refresh, negative cache and
//! bundle sequence, JWKS parsing, HTTP fetching rules.

mod cache;
mod http;
mod jwk;
mod outage;
mod schedule;
