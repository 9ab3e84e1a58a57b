//! The registry of diagnostic codes.
//!
//! Every diagnostic eqlc can emit has a stable code here. Ranges: E00xx lexing and
//! parsing, E01xx names, E02xx types, E03xx sequences and queries, E04xx pipes,
//! E05xx rule files, E06xx schemas, E09xx limits, W0xxx lints, B0xxx eqlc bugs.
//!
//! **Never reuse or renumber a code.** A retired code stays here, marked retired, so
//! that old CI logs and suppressions keep meaning what they meant. Each code has a page
//! in `docs/errors/<CODE>.md`, printed by `eqlc explain <CODE>`; a test checks both agree.

use crate::diag::Severity;

macro_rules! codes {
    ($($code:ident $severity:ident $slug:literal $title:literal;)*) => {
        /// A stable diagnostic code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $($code,)*
        }

        impl Code {
            /// Every code, in registry order.
            pub const ALL: &'static [Code] = &[$(Code::$code,)*];

            /// The code as written in output, e.g. `E0101`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$code => stringify!($code),)* }
            }

            /// A short kebab-case name, e.g. `unknown-field`.
            pub fn slug(self) -> &'static str {
                match self { $(Code::$code => $slug,)* }
            }

            /// One line saying what the code is about.
            pub fn title(self) -> &'static str {
                match self { $(Code::$code => $title,)* }
            }

            /// The default severity of diagnostics with this code.
            pub fn severity(self) -> Severity {
                match self { $(Code::$code => Severity::$severity,)* }
            }

            /// The explanation page, `docs/errors/<CODE>.md`.
            pub fn explanation(self) -> &'static str {
                match self {
                    $(Code::$code => include_str!(concat!("../../docs/errors/", stringify!($code), ".md")),)*
                }
            }
        }
    };
}

codes! {
    // Lexing and parsing.
    E0001 Error "syntax-error" "the parser met a token it did not expect";
    E0002 Error "unexpected-end" "the query ends before it is complete";
    E0003 Error "unknown-character" "a character that is not part of EQL";
    E0004 Error "unterminated-string" "a string literal is not closed";
    E0005 Error "invalid-escape" "an invalid escape sequence in a string";
    E0006 Error "unterminated-comment" "a block comment is not closed";
    E0007 Error "invalid-number" "a number literal is malformed or out of range";
    E0008 Error "keyword-as-name" "a reserved keyword is used where a name is expected";
    E0009 Error "dialect-syntax" "syntax that the selected dialect does not have";
    E0010 Error "unterminated-name" "a backtick-escaped name is not closed";
    E0011 Error "empty-list" "an empty list where values or patterns are expected";
    // Names.
    E0101 Error "unknown-field" "a field the schema does not define";
    E0102 Error "unknown-function" "a call to a function that does not exist";
    E0103 Error "unknown-alias" "a reference to a sequence step alias that is not defined before it";
    E0104 Error "unknown-variable" "a variable that is not bound here";
    E0105 Error "duplicate-alias" "two sequence steps share one alias";
    E0106 Error "unknown-pipe" "a pipe that does not exist";
    E0107 Error "unknown-parameter" "a `with` parameter that does not exist";
    E0108 Error "duplicate-definition" "a macro or constant is defined twice";
    E0109 Error "unknown-relation" "a lineage relation other than `descendant`, `child` or `event`";
    E0110 Error "recursive-macro" "a macro that expands into itself";
    // Types.
    E0201 Error "mismatched-types" "operands whose types cannot be compared or combined";
    E0202 Error "argument-type" "a function argument of the wrong type";
    E0203 Error "argument-count" "a function called with the wrong number of arguments";
    E0204 Error "not-boolean" "a condition that is not a boolean";
    E0205 Error "invalid-regex" "a regular expression that does not compile";
    E0206 Error "invalid-cidr" "an IP address or CIDR block that does not parse";
    E0207 Error "literal-required" "an argument that must be a literal is not";
    E0208 Error "invalid-wildcard" "a wildcard pattern that is malformed";
    E0209 Error "invalid-index" "indexing into something that is not an array";
    E0210 Error "invalid-literal" "a literal that is not a valid value of the field's type";
    E0211 Error "no-case-insensitive-form" "`~` on a function that has no case-insensitive form";
    // Queries and sequences.
    E0301 Error "key-count" "sequence steps join on different numbers of keys";
    E0302 Error "key-type" "sequence steps join keys of incompatible types";
    E0303 Error "invalid-maxspan" "a maxspan without a valid integer and time unit";
    E0304 Error "too-few-steps" "a sequence, join or sample with fewer than two steps";
    E0305 Error "invalid-runs" "a `runs` value out of range or in the wrong place";
    E0306 Error "invalid-missing-event" "a missing-event step `![...]` where it cannot be used";
    E0307 Error "invalid-fork" "`fork` where it cannot be used";
    E0308 Error "duplicate-clause" "a clause given twice";
    E0309 Error "invalid-clause" "a clause that this kind of query does not take";
    E0310 Error "invalid-alias-use" "a step alias used outside a later step of its sequence";
    E0311 Error "missing-category" "an event query without an event category";
    // Pipes.
    E0401 Error "invalid-pipe-argument" "a pipe argument of the wrong kind or count";
    // Rule files.
    E0501 Error "io-error" "a file that cannot be read";
    E0502 Error "invalid-rule-file" "a rule file that is not valid TOML or JSON";
    E0503 Error "missing-query" "a rule file without a query";
    E0504 Error "invalid-predicate" "a `[[predicate]]` declaration that is malformed";
    E0505 Error "invalid-predicate-code" "a hand-written predicate whose code breaks the predicate ABI";
    E0506 Error "cannot-block" "`block` on a rule whose deciding step no mechanism can block";
    E0507 Error "invalid-action" "a rule action (`action`, `kill`, `kill_step`, `kill_tree`, `actions`) that is malformed";
    // Schemas.
    E0601 Error "invalid-schema" "a schema file that is malformed";
    // Back end.
    E0701 Error "unsupported-by-backend" "a construct the back end cannot compile into a bundle yet";
    // Limits.
    E0901 Error "too-deep" "a query nested deeper than eqlc allows";
    E0902 Error "too-large" "a query, list or sequence larger than eqlc allows";
    // Lints.
    W0001 Warning "wildcard-in-equals" "`==` with `*` compares a literal asterisk in the Elasticsearch dialect";
    W0002 Warning "unbounded-sequence" "a sequence without maxspan keeps partial matches forever";
    W0003 Warning "duplicate-item" "the same value appears twice in a list";
    W0004 Warning "regex-never-matches" "a regular expression that can never match a whole value";
    W0005 Warning "always-false" "a condition that can never be true";
    W0006 Warning "always-true" "a condition that is always true";
    W0007 Warning "field-not-produced" "a field the target sensor never produces";
    W0008 Warning "wildcard-in-in" "`in` compares literally; a `*` in its list is not a wildcard";
    W0009 Warning "category-not-produced" "an event category the target sensor never produces";
    W0010 Warning "value-not-produced" "a value the target sensor never produces for this field";
    W0011 Warning "slash-in-name" "`process.name` and `file.name` never contain `/`";
    W0012 Warning "match-anything" "a pattern that matches every value";
    W0013 Warning "redundant-runs" "`runs=1` repeats a step once, which does nothing";
    W0014 Warning "duplicate-operand" "the same condition appears twice in `and` or `or`";
    W0015 Warning "duplicate-rule-id" "two rules share one rule id";
    W0016 Warning "mixed-and-or" "`and` inside `or` without parentheses";
    W0017 Warning "action-not-supported" "an Elastic action on a process of another platform, which Kestrel leaves out";
    // eqlc bugs.
    B0001 Bug "internal-error" "eqlc failed internally; this is a bug in eqlc";
}

impl Code {
    /// Looks a code up by its written form, case-insensitively (`e0101` works).
    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|code| code.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
