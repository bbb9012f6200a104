"""ROS's published resource specifications, read offline from the `ros-cdk-*` packages, and a checker of a ROS
template against them.

Each `ros-cdk-<service>` wheel ships a jsii assembly (`ros_cdk_<service>/_jsii/*.jsii.tgz`). In it:

* `package/.jsii` (JSON): for every resource class `Ros<X>` its props interface `Ros<X>Props` (each property's
  type and whether it is optional) and struct types `Ros<X>.<Y>Property`, plus the resource's attributes
  (`attr*`, documented as "`Name`: description") and each property's documentation;
* `package/lib/*.generated.js`: `Ros<X>.ROS_RESOURCE_TYPE_NAME = "ALIYUN::…"`, the `ros<X>PropsToRosTemplate`
  renderers that give each camelCase property its exact template name (`ttl` → `TTL`, `vSwitchIds` →
  `VSwitchIds`), and the validators' `allowedValues` lists.

`check_template(document)` returns one message per problem (empty: the template conforms): unknown resource
types, unknown or missing-required properties at every nesting level, literal values of the wrong type, values
outside a documented list (allowed values, FC runtimes, Tablestore instance names), and `Ref`/`Fn::GetAtt`/
`Fn::Sub`/`DependsOn` naming nothing the template or the resource type has.
"""

from __future__ import annotations

import importlib.util
import json
import re
import tarfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

# The packages template.yml draws its resource types from (pinned in pyproject's dev extra).
PACKAGES = ("fc", "fc3", "ots", "mns", "ram", "sls", "oss", "vpc", "ecs")
PSEUDO_PARAMETERS = frozenset({"ALIYUN::Region", "ALIYUN::AccountId", "ALIYUN::StackName", "ALIYUN::StackId",
                               "ALIYUN::NoValue", "ALIYUN::TenantId"})  # fmt: skip
RESOLVABLE = "@alicloud/ros-cdk-core.IResolvable"
# Tablestore's CreateInstance: 3-16 characters, a letter first, no trailing '-', none of these words.
TABLESTORE_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,14}[a-zA-Z0-9]$")
TABLESTORE_RESERVED = ("ali", "ay", "ots", "taobao", "admin")
_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


@dataclass
class Prop:
    name: str  # as written in a template
    js_name: str
    required: bool
    type: dict[str, Any]
    doc: str
    allowed: list[Any] | None = None
    range: tuple[float | None, float | None] | None = None


@dataclass
class Shape:
    """A props interface or a struct: template property name → Prop."""

    fqn: str
    props: dict[str, Prop] = field(default_factory=dict)


@dataclass
class ResourceSpec:
    type_name: str
    package: str
    shape: Shape
    attributes: frozenset[str]


@dataclass
class Specs:
    resources: dict[str, ResourceSpec]
    shapes: dict[str, Shape]  # by jsii fqn

    def shape(self, fqn: str) -> Shape | None:
        return self.shapes.get(fqn)


def _assembly(package: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The package's .jsii document and its generated JS sources (by file name)."""
    # Located, never imported: importing a ros_cdk package starts the jsii runtime (a node process).
    spec = importlib.util.find_spec(f"ros_cdk_{package}")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"ros-cdk-{package} is not installed (pyproject's dev extra pins it)")
    folder = Path(next(iter(spec.submodule_search_locations))) / "_jsii"
    tarballs = [p for p in folder.iterdir() if p.name.endswith(".jsii.tgz")]
    if len(tarballs) != 1:
        raise FileNotFoundError(f"ros_cdk_{package}/_jsii holds {len(tarballs)} jsii tarballs, expected one")
    with tarballs[0].open("rb") as handle, tarfile.open(fileobj=handle, mode="r:gz") as archive:
        jsii: dict[str, Any] | None = None
        sources: dict[str, str] = {}
        for member in archive.getmembers():
            if member.name == "package/.jsii":
                jsii = json.load(archive.extractfile(member))  # type: ignore[arg-type]
            elif re.fullmatch(r"package/lib/[^/]+\.generated\.js", member.name):
                sources[member.name] = archive.extractfile(member).read().decode("utf-8")  # type: ignore[union-attr]
    if jsii is None:
        raise FileNotFoundError(f"no package/.jsii in {tarballs[0]}")
    return jsii, sources


def _blocks(js: str, header: str) -> Iterator[tuple[str, str]]:
    """(name, body) of every top-level `function <name>(...) {...}` whose name matches `header`."""
    for match in re.finditer(rf"^function ({header})\(properties[^)]*\) {{\n(.*?)^}}\n", js, re.M | re.S):
        yield match.group(1), match.group(2)


def _render_names(js: str) -> dict[str, dict[str, str]]:
    """`rosXToRosTemplate` → {camelName: TemplateName}."""
    out: dict[str, dict[str, str]] = {}
    for name, body in _blocks(js, r"ros\w+ToRosTemplate"):
        pairs = re.findall(r"^\s*'([A-Za-z0-9_.]+)': .*\(properties\.(\w+)\),?$", body, re.M)
        out[name] = {camel: ros for ros, camel in pairs}
    return out


def _validators(js: str) -> dict[str, dict[str, dict[str, Any]]]:
    """`RosXPropsValidator` / `RosX_YPropertyValidator` → {camelName: {"allowed": [...], "range": (min, max)}}."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, body in _blocks(js, r"Ros\w+Validator"):
        rules: dict[str, dict[str, Any]] = {}
        for prop, values in re.findall(
            r"propertyValidator\('(\w+)', ros\.validateAllowedValues\)\(\{\s*data: [^\n]*\n"
            r"\s*allowedValues: (\[.*?\]),",
            body,
            re.S,
        ):
            rules.setdefault(prop, {})["allowed"] = json.loads(values)
        for prop, low, high in re.findall(
            r"propertyValidator\('(\w+)', ros\.validateRange\)\(\{\s*data: [^\n]*\n\s*min: ([^,]+),\s*max: ([^,]+),",
            body,
            re.S,
        ):
            rules.setdefault(prop, {})["range"] = tuple(None if v == "undefined" else float(v) for v in (low, high))
        out[name] = rules
    return out


def _doc(prop: Mapping[str, Any]) -> str:
    return str(prop.get("docs", {}).get("custom", {}).get("Property", ""))


@cache
def load_specs(packages: tuple[str, ...] = PACKAGES) -> Specs:
    resources: dict[str, ResourceSpec] = {}
    shapes: dict[str, Shape] = {}
    for package in packages:
        jsii, sources = _assembly(package)
        js = "\n".join(sources.values())
        names = _render_names(js)
        rules = _validators(js)
        assembly = jsii["name"]
        for fqn, typ in jsii["types"].items():
            if typ.get("kind") != "interface" or not typ.get("datatype"):
                continue
            if typ.get("namespace", "").startswith("datasource"):
                continue
            local = fqn[len(assembly) + 1 :]
            if not local.startswith("Ros"):
                continue
            stem = local[3:].replace(".", "")
            renderer = names.get(f"ros{stem}ToRosTemplate")
            if renderer is None:
                continue
            validator = rules.get(f"{local.replace('.', '_')}Validator", {})
            shape = Shape(fqn)
            for prop in typ.get("properties", []):
                camel = prop["name"]
                ros_name = renderer.get(camel, camel[:1].upper() + camel[1:])
                rule = validator.get(camel, {})
                shape.props[ros_name] = Prop(
                    name=ros_name,
                    js_name=camel,
                    required=not prop.get("optional", False),
                    type=prop["type"],
                    doc=_doc(prop),
                    allowed=rule.get("allowed"),
                    range=rule.get("range"),
                )
            shapes[fqn] = shape
        for cls, type_name in re.findall(r'^(Ros\w+)\.ROS_RESOURCE_TYPE_NAME = "([^"]+)";', js, re.M):
            shape = shapes.get(f"{assembly}.{cls}Props")
            klass = jsii["types"].get(f"{assembly}.{cls}", {})
            attributes = frozenset(
                str(p["docs"]["custom"]["Attribute"]).split(":", 1)[0]
                for p in klass.get("properties", [])
                if p["name"].startswith("attr") and "Attribute" in p.get("docs", {}).get("custom", {})
            )
            if shape is not None:
                resources[type_name] = ResourceSpec(type_name, package, shape, attributes)
    return Specs(resources, shapes)


# -------------------------------------------------------------------------------------------- checks


def _is_intrinsic(value: Any) -> bool:
    if not (isinstance(value, dict) and len(value) == 1):
        return False
    key = str(next(iter(value)))
    return key == "Ref" or key.startswith("Fn::")


def _matches(value: Any, typ: Mapping[str, Any], specs: Specs, where: str, problems: list[str]) -> bool:
    """Does `value` fit the jsii type? Struct members are checked recursively (their problems are recorded)."""
    if _is_intrinsic(value):
        return True  # resolved by ROS before its own validation
    if "union" in typ:
        # The member whose JSON kind the value has decides (ROS unions never hold two of one kind).
        for candidate in typ["union"]["types"]:
            if candidate.get("fqn") != RESOLVABLE and _kind_fits(value, candidate, specs):
                return _matches(value, candidate, specs, where, problems)
        return False
    if "primitive" in typ:
        kind = typ["primitive"]
        if kind == "string":
            return isinstance(value, str)
        if kind == "number":
            return isinstance(value, int | float) and not isinstance(value, bool)
        if kind == "boolean":
            return isinstance(value, bool)
        return True  # any, json
    if "collection" in typ:
        element = typ["collection"]["elementtype"]
        if typ["collection"]["kind"] == "array":
            if not isinstance(value, list):
                return False
            return all(_matches(item, element, specs, f"{where}[{i}]", problems) for i, item in enumerate(value))
        if not isinstance(value, dict):
            return False
        return all(_matches(item, element, specs, f"{where}.{k}", problems) for k, item in value.items())
    if "fqn" in typ:
        if typ["fqn"] == RESOLVABLE:
            return False
        shape = specs.shape(typ["fqn"])
        if shape is None:
            return True  # an enum or class this checker does not model
        if not isinstance(value, dict):
            return False
        _check_object(value, shape, specs, where, problems)
        return True
    return True


def _kind_fits(value: Any, typ: Mapping[str, Any], specs: Specs) -> bool:
    if "union" in typ:
        return any(_kind_fits(value, t, specs) for t in typ["union"]["types"] if t.get("fqn") != RESOLVABLE)
    if "primitive" in typ:
        return _matches(value, typ, specs, "", [])
    if "collection" in typ:
        return isinstance(value, list if typ["collection"]["kind"] == "array" else dict)
    return isinstance(value, dict) or specs.shape(str(typ.get("fqn"))) is None


def _check_object(value: Mapping[str, Any], shape: Shape, specs: Specs, where: str, problems: list[str]) -> None:
    for key in value:
        if key not in shape.props:
            close = [n for n in shape.props if n.lower() == str(key).lower()]
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"{where}: unknown property {key!r}{hint}")
    for prop in shape.props.values():
        if prop.name not in value:
            if prop.required:
                problems.append(f"{where}: required property {prop.name!r} is missing")
            continue
        item = value[prop.name]
        here = f"{where}.{prop.name}"
        if not _matches(item, prop.type, specs, here, problems):
            problems.append(f"{here}: {json.dumps(item)[:80]} does not have the type {_type_name(prop.type)}")
            continue
        if _is_intrinsic(item):
            continue
        if prop.allowed is not None and item not in prop.allowed:
            problems.append(f"{here}: {item!r} is not one of {prop.allowed}")
        if prop.range is not None and isinstance(item, int | float):
            low, high = prop.range
            if (low is not None and item < low) or (high is not None and item > high):
                problems.append(f"{here}: {item} is outside [{low}, {high}]")


def _type_name(typ: Mapping[str, Any]) -> str:
    if "union" in typ:
        return " | ".join(_type_name(t) for t in typ["union"]["types"] if t.get("fqn") != RESOLVABLE)
    if "primitive" in typ:
        return str(typ["primitive"])
    if "collection" in typ:
        return f"{typ['collection']['kind']}<{_type_name(typ['collection']['elementtype'])}>"
    return str(typ.get("fqn", "?")).rsplit(".", 1)[-1]


def documented_runtimes(specs: Specs, type_name: str = "ALIYUN::FC::Function") -> frozenset[str]:
    """The runtimes `ALIYUN::FC::Function`'s Runtime documentation lists ("Supporting nodejs16、…、custom")."""
    doc = specs.resources[type_name].shape.props["Runtime"].doc
    listed = doc.split("Supporting", 1)[1].split("and so on", 1)[0]
    return frozenset(token.strip() for token in re.split(r"[、,]|和", listed) if token.strip())


def _documented_values(name: str, rtype: str, props: Mapping[str, Any], specs: Specs) -> Iterator[str]:
    where = f"Resources.{name}"
    runtime = props.get("Runtime")
    if rtype == "ALIYUN::FC::Function" and isinstance(runtime, str) and runtime not in documented_runtimes(specs):
        yield f"{where}.Runtime: {props['Runtime']!r} is not a documented FC runtime"
    if rtype == "ALIYUN::FC::Layer" and isinstance(props.get("CompatibleRuntime"), list):
        runtimes = documented_runtimes(specs)
        for runtime in props["CompatibleRuntime"]:
            if isinstance(runtime, str) and runtime not in runtimes:
                yield f"{where}.CompatibleRuntime: {runtime!r} is not a documented FC runtime"
    if rtype in ("ALIYUN::OTS::Instance", "ALIYUN::OTS::InstanceV2") and isinstance(props.get("InstanceName"), str):
        yield from _tablestore_name(f"{where}.InstanceName", props["InstanceName"])


def _tablestore_name(where: str, value: str) -> Iterator[str]:
    if not TABLESTORE_NAME.match(value):
        yield f"{where}: {value!r} is not 3-16 letters, digits or '-' starting with a letter"
    for word in TABLESTORE_RESERVED:
        if word in value.lower():
            yield f"{where}: {value!r} contains the reserved word {word!r}"


def _walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def _references(node: Any, resources: Mapping[str, Any], parameters: Iterable[str], specs: Specs) -> Iterator[str]:
    names = set(parameters) | PSEUDO_PARAMETERS

    def attribute(resource: str, attr: str, how: str) -> Iterator[str]:
        body = resources.get(resource)
        if not isinstance(body, dict):
            yield f"{how} names no resource {resource!r}"
            return
        spec = specs.resources.get(str(body.get("Type")))
        if spec is not None and attr not in spec.attributes:
            yield f"{how}: {body['Type']} has no attribute {attr!r} (it has {sorted(spec.attributes)})"

    for item in _walk(node):
        if not _is_intrinsic(item):
            continue
        ((key, value),) = item.items()
        if key == "Ref" and value not in names and value not in resources:
            yield f"Ref {value!r} names no parameter or resource"
        elif key == "Fn::GetAtt":
            if isinstance(value, list) and len(value) == 2:
                yield from attribute(str(value[0]), str(value[1]), f"Fn::GetAtt {value[0]}.{value[1]}")
            else:
                yield f"Fn::GetAtt takes [resource, attribute], got {value!r}"
        elif key == "Fn::Sub":
            text, local = (value[0], value[1]) if isinstance(value, list) else (value, {})
            for var in _SUB_VAR.findall(str(text)):
                if var in local or var in names or var in resources:
                    continue
                if "." in var:
                    resource, attr = var.split(".", 1)
                    yield from attribute(resource, attr, f"Fn::Sub ${{{var}}}")
                else:
                    yield f"Fn::Sub ${{{var}}} names no parameter or resource"


def check_template(document: Mapping[str, Any], specs: Specs | None = None) -> list[str]:
    """Every problem ROS's resource specifications find in `document` (a template with long-form intrinsics)."""
    specs = specs or load_specs()
    problems: list[str] = []
    if document.get("ROSTemplateFormatVersion") != "2015-09-01":
        problems.append("ROSTemplateFormatVersion must be '2015-09-01'")
    if "Transform" in document:
        problems.append(f"Transform {document['Transform']!r}: not a native ROS template")
    parameters = document.get("Parameters") or {}
    resources = document.get("Resources") or {}
    for name, body in resources.items():
        where = f"Resources.{name}"
        rtype = body.get("Type") if isinstance(body, dict) else None
        spec = specs.resources.get(str(rtype))
        if spec is None:
            problems.append(f"{where}: {rtype!r} is not a ROS resource type")
            continue
        props = body.get("Properties") or {}
        _check_object(props, spec.shape, specs, f"{where}.Properties", problems)
        problems.extend(_documented_values(name, str(rtype), props, specs))
        depends = body.get("DependsOn") or []
        for target in [depends] if isinstance(depends, str) else depends:
            if target not in resources:
                problems.append(f"{where}.DependsOn: no resource {target!r}")
    problems.extend(_references(resources, resources, parameters, specs))
    problems.extend(_references(document.get("Outputs") or {}, resources, parameters, specs))
    return problems
