//! Assertions on the API's answers.

use serde_json::Value;

/// The `detail` items of a 422, as (loc, type) pairs, for compact assertions.
pub fn errors(body: &Value) -> Vec<(Value, String)> {
    body["detail"]
        .as_array()
        .unwrap_or_else(|| panic!("no detail array in {body}"))
        .iter()
        .map(|e| {
            (
                e["loc"].clone(),
                e["type"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Asserts a FastAPI-shaped 422 whose errors include one at `loc` of type `kind`.
pub async fn assert_422(response: reqwest::Response, loc: Value, kind: &str, case: &str) {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 422, "{case}: expected 422, got {status}: {body}");
    for item in body["detail"].as_array().unwrap_or(&vec![]) {
        assert!(
            item["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "{case}: empty msg in {body}"
        );
    }
    assert!(
        errors(&body).contains(&(loc.clone(), kind.to_owned())),
        "{case}: expected an error at {loc} of type {kind}, got {body}"
    );
}

/// The X-Total-Count of a listing.
pub fn total_count(response: &reqwest::Response) -> i64 {
    response
        .headers()
        .get("x-total-count")
        .unwrap_or_else(|| panic!("no X-Total-Count on {}", response.url()))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}
