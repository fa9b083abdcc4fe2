//! The OpenAPI 3 document, built from [`super::routes::ROUTES`] (the table the router is
//! built from), so every documented route exists and every route is documented.

use serde_json::{json, Map, Value};

use super::routes::{Paths, ROUTES};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    })
}

/// The document for a server reachable at `public_url`.
pub fn document(public_url: &str, mounts: &Paths) -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let path = mounts.of(r);
        let mut op = Map::new();
        op.insert("summary".into(), json!(r.summary));
        op.insert(
            "operationId".into(),
            json!(format!(
                "{}{}",
                r.method,
                path.replace(['/', '{', '}', '.', '-', '$'], "_")
            )),
        );
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        if r.path == "/v1/medical-scribe-jobs" && r.method == "get" {
            let q = |n: &str, t: &str| json!({"name": n, "in": "query", "required": false, "schema": {"type": t}});
            op.insert(
                "parameters".into(),
                json!([
                    q("Status", "string"),
                    q("JobNameContains", "string"),
                    q("MaxResults", "integer"),
                    q("NextToken", "string")
                ]),
            );
        }
        match r.body {
            Some("audio") => {
                op.insert("requestBody".into(), json!({"required": true, "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}));
            }
            Some(schema) => {
                op.insert("requestBody".into(), json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}));
            }
            None => {}
        }
        let mut responses = Map::new();
        responses.insert(
            r.ok.0.to_string(),
            json!({"description": "success", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", r.ok.1)}}}}),
        );
        if let Some(scope) = r.scope {
            op.insert("security".into(), json!([{"bearer": [scope]}]));
            responses.insert("400".into(), error_response("BadRequestException"));
            responses.insert(
                "401".into(),
                error_response("no, expired or invalid bearer token"),
            );
            responses.insert(
                "403".into(),
                error_response("AccessDeniedException: missing scope or another patient"),
            );
            responses.insert("404".into(), error_response("NotFoundException"));
            responses.insert("409".into(), error_response("ConflictException"));
            responses.insert("429".into(), error_response("LimitExceededException"));
            responses.insert("500".into(), error_response("InternalFailureException"));
        }
        op.insert("responses".into(), Value::Object(responses));
        let entry = paths
            .entry(path)
            .or_insert_with(|| Value::Object(Map::new()));
        entry[r.method] = Value::Object(op);
    }
    let object = json!({"type": "object", "additionalProperties": true});
    let mut schemas = Map::new();
    for r in ROUTES {
        for name in r.body.into_iter().chain([r.ok.1]) {
            if name != "audio" {
                schemas.insert(name.to_string(), object.clone());
            }
        }
    }
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["__type", "message"], "properties": {"__type": {"type": "string"}, "message": {"type": "string"}}}),
    );
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "fhirscribe",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "AWS HealthScribe's job API (StartMedicalScribeJob, Get, List, Delete) over HTTP, with FHIR write-back; an AWS JSON 1.1 endpoint for AWS SDKs; a read-only FHIR R4 API with Bulk Data $export over what the jobs produced. Job bodies use HealthScribe's field names; FHIR routes answer FHIR resources and OperationOutcomes."
        },
        "servers": [{"url": public_url}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
        }
    })
}
