// The engine sidecar's JSON Schema, compiled in from yolact_deploy/deploy/schemas/
// engine_sidecar.schema.json (the file Python validates with the jsonschema package). The validator
// implements exactly the keywords that file uses and refuses a schema with any other, so the two
// sides cannot silently diverge (ctest fx_sidecar_corpus_agrees_with_python checks they agree).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace yolact {

const nlohmann::json& sidecar_schema();

// Every violation as "<json pointer>: <message>" ("/model/input/network_size: ..."); empty: valid.
std::vector<std::string> sidecar_schema_errors(const nlohmann::json& document);

// The same against any schema written with the supported keywords (tests). Throws Error when the
// schema uses another keyword.
std::vector<std::string> schema_errors(const nlohmann::json& schema, const nlohmann::json& document);

// Parses JSON text with nesting limited to `max_depth` (hostile input cannot exhaust the stack).
// Throws Error "<source>: invalid JSON: ...".
nlohmann::json parse_json(const std::string& text, const std::string& source, int max_depth = 64);

}  // namespace yolact
