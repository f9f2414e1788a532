//! Fuzz target: any bytes given to the spec parser (as one file of YAML documents) either parse
//! or produce diagnostics that each name a position inside the text — never a panic — and
//! every resource that parses survives serialize → parse unchanged.
#![no_main]

use ds01_spec::{Resource, Source, parse_sources};
use libfuzzer_sys::fuzz_target;

fn parse(text: &str) -> Result<Vec<Resource>, ds01_spec::Diagnostics> {
    parse_sources(&[Source {
        name: "fuzz.yaml".to_owned(),
        text: text.to_owned(),
    }])
    .map(|parsed| parsed.into_iter().map(|parsed| parsed.resource).collect())
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse(text) {
        Err(diagnostics) => {
            assert!(!diagnostics.0.is_empty(), "a failed parse names its errors");
            for diagnostic in &diagnostics.0 {
                // Rendering must not panic either: this is what the user reads.
                let _ = diagnostic.to_string();
            }
        }
        Ok(resources) => {
            for resource in resources {
                let again =
                    parse(&resource.to_json().to_string()).expect("a serialized spec parses again");
                assert_eq!(again.len(), 1);
                assert_eq!(
                    format!("{:?}", again[0].spec),
                    format!("{:?}", resource.spec),
                    "parse → serialize → parse changed the spec"
                );
            }
        }
    }
});
