//! Bearer tokens: one admin token per broker, and one token per worker that may only act as
//! that worker (send as itself, list workers, read its own mode and pending queue).
//!
//! Tokens are 256 random bits from the thread CSPRNG, hex-encoded. The admin token is
//! compared in constant time. Worker tokens are found by a hash-map lookup (O(1) with 200
//! workers, where a constant-time comparison against each was ~2% of the CPU of every HTTP
//! request at 16): the map compares bytes only against a stored token whose SipHash — keyed
//! randomly per process — equals that of the presented one, so an attacker cannot choose
//! which token their guess is compared with, and learns nothing from timing about its bytes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use subtle::ConstantTimeEq;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    Admin,
    Worker(String),
}

#[derive(Clone)]
pub struct Tokens {
    admin: String,
    /// Worker token → worker name.
    workers: Arc<RwLock<HashMap<String, String>>>,
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Default for Tokens {
    fn default() -> Self {
        Self::new()
    }
}

impl Tokens {
    pub fn new() -> Self {
        Tokens {
            admin: random_token(),
            workers: Arc::default(),
        }
    }

    pub fn admin(&self) -> &str {
        &self.admin
    }

    /// A fresh token for worker `name`, replacing any earlier one for that name.
    pub fn issue_worker(&self, name: &str) -> String {
        let token = random_token();
        let mut workers = self.workers.write().expect("token table poisoned");
        workers.retain(|_, n| n != name);
        workers.insert(token.clone(), name.to_string());
        token
    }

    /// Revokes worker `name`'s token (it was released or its program ended).
    pub fn revoke_worker(&self, name: &str) {
        let mut workers = self.workers.write().expect("token table poisoned");
        workers.retain(|_, n| n != name);
    }

    /// Who `presented` belongs to, if anyone.
    pub fn check(&self, presented: &str) -> Option<Scope> {
        let p = presented.as_bytes();
        if bool::from(p.ct_eq(self.admin.as_bytes())) {
            return Some(Scope::Admin);
        }
        let workers = self.workers.read().expect("token table poisoned");
        workers
            .get(presented)
            .map(|name| Scope::Worker(name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_scoped_and_reissue_revokes() {
        let t = Tokens::new();
        assert_eq!(t.admin().len(), 64);
        assert_eq!(t.check(t.admin()), Some(Scope::Admin));
        let a = t.issue_worker("a");
        assert_eq!(t.check(&a), Some(Scope::Worker("a".into())));
        let a2 = t.issue_worker("a");
        assert_eq!(t.check(&a), None);
        assert_eq!(t.check(&a2), Some(Scope::Worker("a".into())));
        assert_eq!(t.check(""), None);
        assert_eq!(t.check("nope"), None);
    }
}
