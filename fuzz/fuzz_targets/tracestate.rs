//! `TraceState::parse` / `parse_all` never panic and accept or refuse exactly as an independent
//! reference of the current (Level 2) grammar says, with the same members: keys
//! `( lcalpha / DIGIT ) 0*255 ( keychar )` with `@` a keychar, values of 1 to 256 printable
//! characters other than `,` and `=` not ending in a space, at most 32 list-members (duplicates
//! included), a repeated key keeping its first entry. Accepted headers re-encode to a header
//! that parses to an equal value, formatting is stable, and truncation never exceeds its budget.
#![no_main]

use agentcore_telemetry::propagation::{PropagationError, TraceState};
use libfuzzer_sys::fuzz_target;

/// The reference: the members the current text says the fields hold, or the rule broken.
fn reference(fields: &[&str]) -> Result<Vec<(String, String)>, PropagationError> {
    let mut members: Vec<(String, String)> = Vec::new();
    let mut count = 0;
    for field in fields {
        for raw in field.split(',') {
            let member = raw.trim_matches(|c| c == ' ' || c == '\t');
            if member.is_empty() {
                continue;
            }
            let Some(eq) = member.find('=') else {
                return Err(PropagationError::MissingEquals);
            };
            let (key, value) = (&member[..eq], &member[eq + 1..]);
            let key_ok = key.len() <= 256
                && key.chars().enumerate().all(|(i, c)| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || (i > 0 && "_-*/@".contains(c))
                });
            if key.is_empty() || !key_ok {
                return Err(PropagationError::InvalidKey);
            }
            let value_ok = !value.is_empty()
                && value.len() <= 256
                && !value.ends_with(' ')
                && value
                    .chars()
                    .all(|c| (' '..='~').contains(&c) && c != ',' && c != '=');
            if !value_ok {
                return Err(PropagationError::InvalidValue);
            }
            count += 1;
            if count > 32 {
                return Err(PropagationError::TooManyMembers { limit: 32 });
            }
            if !members.iter().any(|(k, _)| k == key) {
                members.push((key.to_owned(), value.to_owned()));
            }
        }
    }
    Ok(members)
}

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    // Also exercise the multi-field path: split the input at NUL bytes.
    let fields: Vec<&str> = input.split('\0').collect();
    let all = TraceState::parse_all(fields.iter().copied());
    let expected = reference(&fields);
    match (&all, &expected) {
        (Ok(ts), Ok(members)) => {
            let got: Vec<(&str, &str)> = ts.iter().collect();
            let want: Vec<(&str, &str)> = members
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            assert_eq!(got, want, "members of {fields:?}");
        }
        (Err(got), Err(want)) => assert_eq!(got, want, "error for {fields:?}"),
        _ => panic!("{fields:?}: parse_all gave {all:?}, the reference {expected:?}"),
    }
    let Ok(first) = TraceState::parse(&input) else {
        return;
    };
    let encoded = first.to_string();
    let second = TraceState::parse(&encoded).expect("re-encoded tracestate must parse");
    assert_eq!(second, first);
    assert_eq!(second.to_string(), encoded);

    let budget = data.len() % 600;
    let mut truncated = String::new();
    let dropped = first.write_truncated(&mut truncated, budget);
    assert!(truncated.len() <= budget);
    let kept = TraceState::parse(&truncated).expect("truncated tracestate must parse");
    assert_eq!(kept.len() + dropped, first.len());
});
