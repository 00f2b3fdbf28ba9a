#!/usr/bin/env python3
"""JSON schemas for kubeconform, made locally (kubeconform cannot download them here).

In the style of openapi2jsonschema (instrumenta's, and the copy in kubeconform's scripts/): schemas
are standalone (every $ref inlined) and strict (additionalProperties: false on every object that
lists its properties), so a misspelt field fails validation instead of being ignored.

  openapi2jsonschema.py kubernetes OPENAPI_V2_JSON OUT_DIR
      Built-in kinds from an API server's /openapi/v2, written as OUT_DIR/<kind><suffix>.json with
      kubeconform's KindSuffix ("-v1", "-apps-v1", "-networking-v1"), matching
      -schema-location 'OUT_DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json'.

  openapi2jsonschema.py crds OUT_DIR CRD_YAML...
      Custom resources from CRD manifests, written as OUT_DIR/<group>/<kind>_<version>.json,
      matching -schema-location 'OUT_DIR/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json'.
"""

import json
import os
import sys

QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"


def strict(schema):
    """additionalProperties: false wherever properties are listed and nothing else is allowed."""
    if isinstance(schema, list):
        for item in schema:
            strict(item)
        return schema
    if not isinstance(schema, dict):
        return schema
    for key in ("properties", "patternProperties", "definitions"):
        for sub in (schema.get(key) or {}).values():
            strict(sub)
    for key in ("items", "additionalProperties", "not"):
        if isinstance(schema.get(key), (dict, list)):
            strict(schema[key])
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            strict(sub)
    preserves = schema.get("x-kubernetes-preserve-unknown-fields") is True
    if "properties" in schema and "additionalProperties" not in schema and not preserves:
        schema["additionalProperties"] = False
    return schema


def kubernetes_types(schema):
    """Kubernetes' own formats, in JSON Schema: int-or-string, nullable, quantities."""
    if isinstance(schema, list):
        return [kubernetes_types(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: kubernetes_types(v) for k, v in schema.items()}
    if out.get("format") == "int-or-string" or out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out.pop("format", None)
        out["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def inline(schema, definitions, stack=()):
    """Replaces each $ref by the definition it names. A recursive reference (JSONSchemaProps
    inside JSONSchemaProps) becomes an open schema: it cannot be inlined."""
    if isinstance(schema, list):
        return [inline(s, definitions, stack) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        if name in stack:
            return siblings
        if name == QUANTITY:
            resolved = {"oneOf": [{"type": "string"}, {"type": "number"}]}
        else:
            resolved = inline(definitions[name], definitions, stack + (name,))
        merged = dict(resolved)
        merged.update({k: v for k, v in siblings.items() if k == "description"})
        return merged
    return {k: inline(v, definitions, stack) for k, v in schema.items()}


def kind_suffix(group, version):
    """kubeconform's KindSuffix: "-" + the group's first label (or the version, for core) + "-" + version."""
    return f"-{group.split('.')[0].lower()}-{version.lower()}" if group else f"-{version.lower()}"


def write(path, schema):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(schema, f, indent=1, sort_keys=True)
        f.write("\n")


def kubernetes(openapi_path, out_dir):
    with open(openapi_path) as f:
        definitions = json.load(f)["definitions"]
    written = 0
    for name, definition in sorted(definitions.items()):
        gvks = definition.get("x-kubernetes-group-version-kind") or []
        if not gvks:
            continue
        schema = strict(kubernetes_types(inline(definition, definitions, (name,))))
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
        for gvk in gvks:
            path = os.path.join(out_dir, gvk["kind"].lower() + kind_suffix(gvk.get("group", ""), gvk["version"]) + ".json")
            # Generic types (DeleteOptions, WatchEvent) carry every group's GVK; a real kind's own
            # definition wins over them.
            if os.path.exists(path) and len(gvks) > 1:
                continue
            write(path, schema)
            written += 1
    if written < 100:
        sys.exit(f"only {written} schemas from {openapi_path}: is it an API server's /openapi/v2?")
    print(f"{written} Kubernetes schemas written to {out_dir}")


def crds(out_dir, paths):
    import yaml  # PyYAML: Debian's python3-yaml, or `pip install pyyaml`

    written = 0
    for path in paths:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for version in spec["versions"]:
                    schema = (version.get("schema") or {}).get("openAPIV3Schema")
                    if schema is None:
                        continue
                    schema = strict(kubernetes_types(schema))
                    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
                    name = f"{spec['names']['kind'].lower()}_{version['name'].lower()}.json"
                    write(os.path.join(out_dir, spec["group"], name), schema)
                    written += 1
    if written == 0:
        sys.exit(f"no CRD schemas found in {paths}")
    print(f"{written} CRD schemas written to {out_dir}")


def main(argv):
    if len(argv) == 4 and argv[1] == "kubernetes":
        kubernetes(argv[2], argv[3])
    elif len(argv) >= 4 and argv[1] == "crds":
        crds(argv[2], argv[3:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
