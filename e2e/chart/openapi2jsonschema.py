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


def rebuild(schema, node):
    """A copy of schema with node() applied to every schema node, children first."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in ("properties", "patternProperties", "definitions"):
        if isinstance(out.get(key), dict):
            out[key] = {k: rebuild(v, node) for k, v in out[key].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = rebuild(out[key], node)
        elif isinstance(out.get(key), list):
            out[key] = [rebuild(v, node) for v in out[key]]
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(out.get(key), list):
            out[key] = [rebuild(v, node) for v in out[key]]
    return node(out)


def strict(schema):
    """additionalProperties: false wherever properties are listed and nothing else is allowed."""
    if "properties" in schema and "additionalProperties" not in schema:
        if schema.get("x-kubernetes-preserve-unknown-fields") is not True:
            schema["additionalProperties"] = False
    return schema


def kubernetes_types(schema):
    """Kubernetes' own formats, in JSON Schema: int-or-string, nullable."""
    if schema.get("format") == "int-or-string" or schema.pop("x-kubernetes-int-or-string", False) is True:
        schema.pop("type", None)
        schema.pop("format", None)
        schema["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    if schema.pop("nullable", False) is True and isinstance(schema.get("type"), str):
        schema["type"] = [schema["type"], "null"]
    return schema


def both(schema):
    return strict(kubernetes_types(schema))


def inline(schema, definitions, stack=()):
    """Replaces each $ref by the definition it names. A recursive reference (JSONSchemaProps
    inside JSONSchemaProps) becomes an open schema: it cannot be inlined."""
    if not isinstance(schema, dict):
        return schema
    if isinstance(schema.get("$ref"), str):
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in stack:
            return {k: v for k, v in schema.items() if k == "description"}
        if name == QUANTITY:
            resolved = {"oneOf": [{"type": "string"}, {"type": "number"}]}
        else:
            resolved = inline(definitions[name], definitions, stack + (name,))
        if "description" in schema:
            resolved = dict(resolved, description=schema["description"])
        return resolved
    out = dict(schema)
    for key in ("properties", "patternProperties"):
        if isinstance(out.get(key), dict):
            out[key] = {k: inline(v, definitions, stack) for k, v in out[key].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = inline(out[key], definitions, stack)
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(out.get(key), list):
            out[key] = [inline(v, definitions, stack) for v in out[key]]
    return out


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
        schema = rebuild(inline(definition, definitions, (name,)), both)
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
                    # The API server accepts these on every object whether the schema lists them or not.
                    properties = schema.setdefault("properties", {})
                    properties.setdefault("apiVersion", {"type": "string", "enum": [f"{spec['group']}/{version['name']}"]})
                    properties.setdefault("kind", {"type": "string", "enum": [spec["names"]["kind"]]})
                    properties.setdefault("metadata", {"type": "object"})
                    schema = rebuild(schema, both)
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
