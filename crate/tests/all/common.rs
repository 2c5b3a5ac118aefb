// The helpers crate/tests/fixtures.rs also uses, for the files of this binary (`mod common;`).
include!("../common/mod.rs");
