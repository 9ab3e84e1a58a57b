//! The two EQL dialects and the choices that depend on them.
//!
//! The grammar accepts the union of both; the checker reports constructs the selected
//! dialect lacks and decides every dialect-dependent meaning (case sensitivity, `==`
//! with wildcards, division, regex anchoring, null join keys), so that the typed IR
//! and everything after it never ask which dialect a rule was written in.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Elasticsearch EQL, with the Elastic endpoint extensions (the default).
    #[default]
    Elasticsearch,
    /// The python `eql` ("endgame") dialect.
    Endgame,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Elasticsearch => "elasticsearch",
            Dialect::Endgame => "endgame",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Dialect {
    type Err = String;

    fn from_str(text: &str) -> Result<Dialect, String> {
        match text {
            "elasticsearch" | "es" => Ok(Dialect::Elasticsearch),
            "endgame" | "python" | "eql" => Ok(Dialect::Endgame),
            other => Err(format!("unknown dialect `{other}`; expected `elasticsearch` or `endgame`")),
        }
    }
}

/// Case sensitivity of string comparisons in the endgame dialect, which python `eql`
/// switches globally. In the Elasticsearch dialect every operator fixes its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EndgameCase {
    #[default]
    Insensitive,
    Sensitive,
}
