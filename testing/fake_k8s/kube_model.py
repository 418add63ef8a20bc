"""The Kubernetes API's rules, as pure functions: the resource table the discovery documents
are made from, meta/v1 Status errors worded as the API server words them, name and size
validation, label and field selectors, and the three PATCH formats. No I/O, no clock.

Sources are cited beside each rule as paths in the kubernetes/kubernetes repository (k/k);
README.md lists them with what is approximated."""

import copy
import json
import re

# --- the resource table ---------------------------------------------------------------------

STANDARD_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


class Resource:
    """One served resource: group ("" for core), version, plural, kind, namespaced, short names,
    whether it has a status subresource (then writes to the main resource keep the stored
    status, k/k staging/src/k8s.io/apiserver/pkg/registry/rest/update.go and each kind's
    PrepareForUpdate), and whether metadata.generation counts spec changes."""

    def __init__(self, group, version, plural, kind, namespaced=True, short=(), status=False,
                 generation=False, verbs=None, singular=None):
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced, self.short, self.status, self.generation = namespaced, list(short), status, generation
        self.verbs = verbs or STANDARD_VERBS
        self.singular = singular or kind.lower()
        self.custom = group.endswith("gateway.networking.k8s.io")  # a CRD: lists carry kind per item

    @property
    def group_version(self):
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self):
        """The GroupResource as errors name it: "services", "leases.coordination.k8s.io"
        (k/k staging/src/k8s.io/apimachinery/pkg/runtime/schema/group_version.go String())."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self):
        """The GroupKind as Invalid errors name it: "ConfigMap", "Lease.coordination.k8s.io"."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


RESOURCES = [
    Resource("", "v1", "namespaces", "Namespace", namespaced=False, short=["ns"], status=True,
             verbs=["create", "delete", "get", "list", "patch", "update", "watch"]),
    Resource("", "v1", "services", "Service", short=["svc"], status=True),
    Resource("", "v1", "pods", "Pod", short=["po"], status=True),
    Resource("", "v1", "configmaps", "ConfigMap", short=["cm"]),
    Resource("", "v1", "secrets", "Secret"),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", short=["sa"]),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    Resource("coordination.k8s.io", "v1", "leases", "Lease"),
    Resource("", "v1", "endpoints", "Endpoints", short=["ep"]),  # stored only: no Endpoints controller
    Resource("networking.k8s.io", "v1", "ingresses", "Ingress", short=["ing"], status=True, generation=True),
    Resource("networking.k8s.io", "v1", "ingressclasses", "IngressClass", namespaced=False, generation=True),
    Resource("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short=["netpol"], generation=True),
    Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short=["pdb"], status=True,
             generation=True),
    Resource("gateway.networking.k8s.io", "v1", "httproutes", "HTTPRoute", status=True, generation=True),
    Resource("gateway.networking.k8s.io", "v1", "gateways", "Gateway", short=["gtw"], status=True, generation=True),
    Resource("gateway.networking.k8s.io", "v1", "gatewayclasses", "GatewayClass", namespaced=False,
             short=["gc"], status=True, generation=True),
    Resource("apps", "v1", "deployments", "Deployment", short=["deploy"], status=True, generation=True),
    Resource("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    Resource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    Resource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    # kubectl auth can-i creates one (k/k staging/src/k8s.io/kubectl/pkg/cmd/auth/cani.go).
    Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview",
             namespaced=False, verbs=["create"]),
]

BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}


def group_versions():
    """{group: [versions]} in table order, core group excluded."""
    out = {}
    for r in RESOURCES:
        if r.group:
            out.setdefault(r.group, [])
            if r.version not in out[r.group]:
                out[r.group].append(r.version)
    return out


def api_resource_list(group, version):
    """/api/v1 or /apis/GROUP/VERSION as an APIResourceList (k/k staging/src/k8s.io/apimachinery/
    pkg/apis/meta/v1/types.go APIResource), subresources as "plural/status" entries."""
    resources = []
    for r in RESOURCES:
        if r.group != group or r.version != version:
            continue
        entry = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced,
                 "kind": r.kind, "verbs": list(r.verbs)}
        if r.short:
            entry["shortNames"] = list(r.short)
        resources.append(entry)
        if r.status:
            resources.append({"name": r.plural + "/status", "singularName": "", "namespaced": r.namespaced,
                              "kind": r.kind, "verbs": ["get", "patch", "update"]})
    if not resources:
        return None
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": resources}


# --- errors: meta/v1 Status ------------------------------------------------------------------

class ApiError(Exception):
    """An error answered as a meta/v1 Status, worded as k/k staging/src/k8s.io/apimachinery/pkg/
    api/errors/errors.go words it."""

    def __init__(self, code, reason, message, details=None, headers=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details
        self.headers = headers or {}

    def status(self):
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            body["details"] = self.details
        if not self.reason:
            del body["reason"]
        return body


def _details(res, name):
    d = {}
    if name:
        d["name"] = name
    if res.group:
        d["group"] = res.group
    d["kind"] = res.plural
    return d


def not_found(res, name):
    # errors.go NewNotFound: "%s %q not found", details {name, group, kind: resource}.
    return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found', _details(res, name))


def already_exists(res, name):
    # errors.go NewAlreadyExists: "%s %q already exists".
    return ApiError(409, "AlreadyExists", f'{res.qualified} "{name}" already exists', _details(res, name))


def conflict(res, name):
    # errors.go NewConflict with the storage layer's OptimisticLockErrorMsg (k/k staging/src/
    # k8s.io/apiserver/pkg/registry/generic/registry/store.go).
    return ApiError(409, "Conflict",
                    f'Operation cannot be fulfilled on {res.qualified} "{name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                    _details(res, name))


def forbidden(user, verb, res_name, group, subresource, namespace, name):
    """k/k staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go
    forbiddenMessage + errors.go NewForbidden: `services "app" is forbidden: User "u" cannot
    patch resource "services" in API group "" in the namespace "web"`."""
    resource = res_name + ("/" + subresource if subresource else "")
    qualified = f"{res_name}.{group}" if group else res_name
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    reason = f'User "{user}" cannot {verb} resource "{resource}" in API group "{group}" {scope}'
    if name:
        message = f'{qualified} "{name}" is forbidden: {reason}'
    else:
        message = f"{qualified} is forbidden: {reason}"
    details = {"kind": res_name}
    if name:
        details = {"name": name, "kind": res_name}
    if group:
        details["group"] = group
    return ApiError(403, "Forbidden", message, details)


def forbidden_path(user, verb, path):
    # responsewriters/errors.go forbiddenMessage for a non-resource URL.
    return ApiError(403, "Forbidden", f'forbidden: User "{user}" cannot {verb} path "{path}"', {})


def unauthorized():
    # The authentication filter's answer (k/k staging/src/k8s.io/apiserver/pkg/endpoints/filters/
    # authentication.go -> responsewriters.Unauthorized): message and reason "Unauthorized".
    return ApiError(401, "Unauthorized", "Unauthorized", None)


class FieldError:
    """One field.Error (k/k staging/src/k8s.io/apimachinery/pkg/util/validation/field/errors.go):
    its Error() is "<field>: <Type string>: <value>: <detail>", the value left out for TooLong,
    Required and Forbidden."""

    TYPES = {"FieldValueInvalid": "Invalid value", "FieldValueTooLong": "Too long",
             "FieldValueRequired": "Required value", "FieldValueForbidden": "Forbidden",
             "FieldValueDuplicate": "Duplicate value", "FieldValueNotSupported": "Unsupported value"}

    def __init__(self, cause, field, value, detail):
        self.cause, self.field, self.value, self.detail = cause, field, value, detail

    def body(self):
        s = self.TYPES[self.cause]
        if self.cause in ("FieldValueInvalid", "FieldValueDuplicate", "FieldValueNotSupported"):
            s += ": " + (json.dumps(self.value) if isinstance(self.value, str) else str(self.value))
        if self.detail:
            s += ": " + self.detail
        return s

    def text(self):
        return f"{self.field}: {self.body()}"


def invalid(res, name, field_errors):
    """errors.go NewInvalid: `ConfigMap "x" is invalid: <errors>`, one error as is, several in
    [a, b]; details.causes one per field error."""
    texts = [e.text() for e in field_errors]
    joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
    details = {"name": name, "kind": res.kind,
               "causes": [{"reason": e.cause, "message": e.body(), "field": e.field} for e in field_errors]}
    if res.group:
        details["group"] = res.group
    return ApiError(422, "Invalid", f'{res.qualified_kind} "{name}" is invalid: {joined}', details)


def bad_request(message):
    return ApiError(400, "BadRequest", message, None)


def method_not_allowed(method):
    # errors.go NewMethodNotSupported.
    return ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource", None)


def too_many_requests(retry_after):
    # The max-in-flight filter's answer (k/k staging/src/k8s.io/apiserver/pkg/server/filters/
    # maxinflight.go tooManyRequests): 429 with Retry-After, message as errors.go NewTooManyRequests.
    return ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                    {"retryAfterSeconds": retry_after}, headers={"Retry-After": str(retry_after)})


def internal_error(text):
    # errors.go NewInternalError.
    return ApiError(500, "InternalError", f"Internal error occurred: {text}",
                    {"causes": [{"message": text}]})


def timeout_error():
    # errors.go NewTimeoutError as the timeout filter words it (k/k staging/src/k8s.io/apiserver/
    # pkg/server/filters/timeout.go).
    return ApiError(504, "Timeout", "Timeout: request did not complete within the allotted timeout",
                    {"causes": [{"reason": "UnexpectedServerResponse", "message": "request timed out"}],
                     "retryAfterSeconds": 1})


def not_found_path():
    # A path the server has no handler for: 404 with reason NotFound and a generic message.
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


# --- validation ------------------------------------------------------------------------------

# k/k staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go.
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                 "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
                 "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*"
                 "[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
             "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
             "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
               "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
               "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
MAX_CONFIGMAP_BYTES = 1048576  # k/k pkg/apis/core/types.go MaxSecretSize, used for ConfigMaps too
CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def _name_errors(res, name):
    """Which name rule each kind uses (k/k pkg/apis/core/validation/validation.go and the
    groups' validation.go): Services and Namespaces are labels, the rest subdomains."""
    if not name:
        return [FieldError("FieldValueRequired", "metadata.name", "", "name or generateName is required")]
    if res.plural == "services":
        ok, rx, msg, limit = DNS1035_LABEL.match(name), None, DNS1035_MSG, 63
    elif res.plural == "namespaces":
        ok, msg, limit = DNS1123_LABEL.match(name), LABEL_MSG, 63
    elif res.group == "rbac.authorization.k8s.io":
        # RBAC names are path segments only (k/k pkg/apis/rbac/validation/validation.go).
        bad = name in (".", "..") or "/" in name or "%" in name
        return [FieldError("FieldValueInvalid", "metadata.name", name,
                           "may not contain '/'")] if bad else []
    else:
        ok, msg, limit = DNS1123_SUBDOMAIN.match(name), SUBDOMAIN_MSG, 253
    errs = []
    if len(name) > limit:
        errs.append(FieldError("FieldValueInvalid", "metadata.name", name,
                               f"must be no more than {limit} characters"))
    if not ok:
        errs.append(FieldError("FieldValueInvalid", "metadata.name", name, msg))
    return errs


# The top-level fields of each kind's Go type (k/k staging/src/k8s.io/api/*/types.go, the
# Gateway API's CRD schemas) and ObjectMeta's. The server drops any other field it decodes
# (pruning), and with fieldValidation=Strict refuses it instead; only these two levels are
# checked here (README.md, "Approximated").
COMMON_FIELDS = {"apiVersion", "kind", "metadata"}
TOP_FIELDS = {
    "namespaces": {"spec", "status"}, "services": {"spec", "status"}, "pods": {"spec", "status"},
    "configmaps": {"data", "binaryData", "immutable"},
    "secrets": {"data", "stringData", "type", "immutable"},
    "serviceaccounts": {"secrets", "imagePullSecrets", "automountServiceAccountToken"},
    "endpointslices": {"addressType", "endpoints", "ports"}, "leases": {"spec"},
    "ingresses": {"spec", "status"}, "httproutes": {"spec", "status"}, "gateways": {"spec", "status"},
    "gatewayclasses": {"spec", "status"}, "deployments": {"spec", "status"},
    "endpoints": {"subsets"}, "ingressclasses": {"spec"}, "networkpolicies": {"spec"},
    "poddisruptionbudgets": {"spec", "status"},
    "roles": {"rules"}, "clusterroles": {"rules", "aggregationRule"},
    "rolebindings": {"subjects", "roleRef"}, "clusterrolebindings": {"subjects", "roleRef"},
    "selfsubjectaccessreviews": {"spec", "status"},
}
META_FIELDS = {"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
               "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
               "annotations", "ownerReferences", "finalizers", "managedFields"}


def prune_unknown(res, obj):
    """Removes the fields the kind does not have; returns their paths ("sepc", "metadata.lables")."""
    unknown = []
    for key in list(obj):
        if key not in COMMON_FIELDS and key not in TOP_FIELDS.get(res.plural, set()):
            unknown.append(key)
            del obj[key]
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in list(meta):
            if key not in META_FIELDS:
                unknown.append("metadata." + key)
                del meta[key]
    return unknown


def strict_decoding_error(res, unknown):
    """The create/update handlers' answer to unknown fields under fieldValidation=Strict
    (k/k staging/src/k8s.io/apiserver/pkg/endpoints/handlers/rest.go transformDecodeError and
    apimachinery/pkg/runtime/serializer/json strict errors)."""
    fields = ", ".join(f'unknown field "{f}"' for f in unknown)
    return bad_request(f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
                       f"strict decoding error: {fields}")


MICRO_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{6})(Z|[+-]\d\d:\d\d)$")


def decode_micro_times(res, obj):
    """A Lease's acquireTime and renewTime are metav1.MicroTime, decoded with Go's time.Parse
    and layout RFC3339Micro "2006-01-02T15:04:05.000000Z07:00" (k/k staging/src/k8s.io/
    apimachinery/pkg/apis/meta/v1/micro_time.go UnmarshalJSON): exactly six fraction digits,
    else the decoder's 400; stored and served in UTC with "Z"."""
    if res.plural != "leases":
        return
    spec = obj.get("spec") or {}
    for field in ("acquireTime", "renewTime"):
        value = spec.get(field)
        if value is None:
            continue
        m = MICRO_TIME.match(value) if isinstance(value, str) else None
        if not m:
            raise bad_request(f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
                              f'parsing time "{value}" as "2006-01-02T15:04:05.000000Z07:00": cannot parse '
                              f'"{value[19:] if isinstance(value, str) else value}" as ".000000"')
        if m.group(3) != "Z":
            import datetime
            t = datetime.datetime.fromisoformat(value).astimezone(datetime.timezone.utc)
            spec[field] = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def validate(res, obj, namespace):
    """Raises ApiError 422 Invalid for what the API server refuses for our kinds."""
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    errs = _name_errors(res, name)
    if res.plural in ("configmaps", "secrets"):
        total = 0
        for field in ("data", "binaryData") if res.plural == "configmaps" else ("data", "stringData"):
            for key, value in (obj.get(field) or {}).items():
                if not CONFIG_KEY.match(key):
                    errs.append(FieldError("FieldValueInvalid", f"{field}[{key}]", key,
                                           "a valid config key must consist of alphanumeric characters, "
                                           "'-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or "
                                           "'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"))
                total += len(str(value).encode()) if field != "binaryData" else len(str(value)) * 3 // 4
        if total > MAX_CONFIGMAP_BYTES:
            # k/k pkg/apis/core/validation/validation.go ValidateConfigMap: the whole object
            # ("[]"); Secrets name "data".
            field = "[]" if res.plural == "configmaps" else "data"
            errs.append(FieldError("FieldValueTooLong", field, "",
                                   f"must have at most {MAX_CONFIGMAP_BYTES} bytes"))
    if res.plural == "deployments":
        spec = obj.get("spec") or {}
        sel = (spec.get("selector") or {}).get("matchLabels")
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        if not spec.get("selector"):
            errs.append(FieldError("FieldValueRequired", "spec.selector", "", ""))
        elif sel and any(labels.get(k) != v for k, v in sel.items()):
            # k/k pkg/apis/apps/validation/validation.go ValidateDeploymentSpec.
            errs.append(FieldError("FieldValueInvalid", "spec.template.metadata.labels", str(labels),
                                   "`selector` does not match template `labels`"))
    if res.plural == "leases":
        spec = obj.get("spec") or {}
        d = spec.get("leaseDurationSeconds")
        if d is not None and (not isinstance(d, int) or d <= 0):
            # k/k pkg/apis/coordination/validation/validation.go ValidateLeaseSpec.
            errs.append(FieldError("FieldValueInvalid", "spec.leaseDurationSeconds", d, "must be greater than 0"))
    if errs:
        raise invalid(res, name, errs)


# --- selectors -------------------------------------------------------------------------------

def _split_top(text):
    """Splits "a in (x,y),b" at commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p.strip() for p in parts if p.strip()]


_SET_RE = re.compile(r"^([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)$")


def parse_label_selector(text):
    """A label selector string (k/k staging/src/k8s.io/apimachinery/pkg/labels/selector.go):
    k=v, k==v, k!=v, k in (a,b), k notin (a,b), k, !k. Returns a predicate on a labels dict;
    raises ApiError 400 as the server does for a selector it cannot parse."""
    reqs = []
    for part in _split_top(text or ""):
        m = _SET_RE.match(part)
        if m:
            values = {v.strip() for v in m.group(3).split(",") if v.strip()}
            key, op = m.group(1), m.group(2)
            reqs.append((lambda k, vs: lambda l: k in l and l[k] in vs)(key, values) if op == "in"
                        else (lambda k, vs: lambda l: k not in l or l[k] not in vs)(key, values))
        elif "!=" in part:
            k, v = (s.strip() for s in part.split("!=", 1))
            reqs.append((lambda k, v: lambda l: l.get(k) != v)(k, v))
        elif "=" in part:
            k, v = (s.strip() for s in part.replace("==", "=").split("=", 1))
            reqs.append((lambda k, v: lambda l: l.get(k) == v)(k, v))
        elif part.startswith("!"):
            k = part[1:].strip()
            reqs.append((lambda k: lambda l: k not in l)(k))
        elif re.match(r"^[A-Za-z0-9./_-]+$", part):
            reqs.append((lambda k: lambda l: k in l)(part))
        else:
            raise bad_request(f"unable to parse requirement: {part}")
    return lambda labels: all(r(labels or {}) for r in reqs)


def match_label_selector_object(selector, labels):
    """A metav1.LabelSelector object (matchLabels, matchExpressions) against labels."""
    labels = labels or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        k, op, vs = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(k) not in vs:
            return False
        if op == "NotIn" and k in labels and labels[k] in vs:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


FIELD_LABELS = {"metadata.name", "metadata.namespace"}


def parse_field_selector(text, res):
    """metadata.name and metadata.namespace with =, ==, != (every kind supports these two,
    k/k staging/src/k8s.io/apiserver/pkg/registry/generic/matcher.go ObjectMetaFieldsSet); other
    fields: 400 "field label not supported" as for kinds without them."""
    reqs = []
    for part in _split_top(text or ""):
        neg = "!=" in part
        k, v = (s.strip() for s in part.replace("==", "=").replace("!=", "=").split("=", 1))
        if k not in FIELD_LABELS:
            raise bad_request(f'"{k}" is not a known field selector: only "metadata.name", "metadata.namespace"')
        path = k.split(".")[1]
        reqs.append((lambda p, v, neg: lambda o: (((o.get("metadata") or {}).get(p, "")) == v) != neg)(path, v, neg))
    return lambda obj: all(r(obj) for r in reqs)


# --- patches ---------------------------------------------------------------------------------

def merge_patch(target, patch):
    """RFC 7386 JSON Merge Patch: null deletes, objects merge, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


class PatchError(Exception):
    pass


def _pointer(path):
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc, parts):
    for p in parts:
        if isinstance(doc, list):
            if not p.isdigit() or int(p) >= len(doc):
                raise PatchError(f"index {p} out of bounds")
            doc = doc[int(p)]
        elif isinstance(doc, dict):
            if p not in doc:
                raise PatchError(f"missing key {p}")
            doc = doc[p]
        else:
            raise PatchError(f"cannot walk into {p}")
    return doc


def json_patch(doc, ops):
    """RFC 6902 JSON Patch: add, remove, replace, move, copy, test; all or nothing. Errors
    become the server's 422 ("the server rejected our request due to an error in our request")
    at the caller, as k/k staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go does."""
    doc = copy.deepcopy(doc)
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations")
    for op in ops:
        kind, parts = op.get("op"), _pointer(op.get("path", ""))
        if kind == "test":
            try:
                cur = _walk(doc, parts)
            except PatchError:
                raise PatchError(f"testing value {op.get('path')} failed: missing value")
            if cur != op.get("value"):
                raise PatchError(f"testing value {op.get('path')} failed: test failed")
            continue
        if kind in ("move", "copy"):
            src = _pointer(op.get("from", ""))
            value = copy.deepcopy(_walk(doc, src))
            if kind == "move":
                doc = _remove(doc, src)
            doc = _add(doc, parts, value)
        elif kind == "add":
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc = _remove(doc, parts)
        elif kind == "replace":
            _walk(doc, parts)  # must exist
            doc = _remove(doc, parts)
            doc = _add(doc, parts, copy.deepcopy(op.get("value")))
        else:
            raise PatchError(f"Unexpected kind: {kind}")
    return doc


def _add(doc, parts, value):
    if not parts:
        return value
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise PatchError(f"add operation does not apply: index {last} out of bounds")
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise PatchError("add operation does not apply: doc is missing path")
    return doc


def _remove(doc, parts):
    if not parts:
        raise PatchError("cannot remove the whole document")
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        if not last.isdigit() or int(last) >= len(parent):
            raise PatchError(f"remove operation does not apply: doc is missing path: \"/{'/'.join(parts)}\"")
        del parent[int(last)]
    elif isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"remove operation does not apply: doc is missing path: \"/{'/'.join(parts)}\"")
        del parent[last]
    return doc


# Merge keys of the lists our kinds have, from the Go types' patchMergeKey tags (k/k
# staging/src/k8s.io/api/core/v1/types.go, apps/v1/types.go). Keyed by the field's name and,
# where the same name has different keys, the parent's kind of content.
MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name",
    "env": "name", "volumes": "name", "volumeMounts": "mountPath", "imagePullSecrets": "name",
    "conditions": "type", "ownerReferences": "uid", "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}


def _merge_key(field, items):
    if field == "ports":
        # ServicePort merges on "port", ContainerPort on "containerPort".
        sample = next((i for i in items if isinstance(i, dict)), {})
        return "containerPort" if "containerPort" in sample else "port"
    return MERGE_KEYS.get(field)


def strategic_merge_patch(target, patch, field=None):
    """An approximation of strategic merge patch (k/k staging/src/k8s.io/apimachinery/pkg/util/
    strategicpatch/patch.go) for built-in kinds: objects merge as in RFC 7386; lists whose Go
    field has a patchMergeKey (MERGE_KEYS) merge item by item on that key, items with
    "$patch": "delete" go; other lists replace. Directives kubectl apply sends are honoured or
    dropped: $patch replace/delete on maps, $retainKeys, $deleteFromPrimitiveList/<f>, and
    $setElementOrder/<f> (order only: ignored)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for k, v in patch.items():
        if k in ("$patch", "$retainKeys") or k.startswith("$setElementOrder/"):
            continue
        if k.startswith("$deleteFromPrimitiveList/"):
            name = k.split("/", 1)[1]
            if isinstance(out.get(name), list):
                out[name] = [x for x in out[name] if x not in v]
            continue
        if v is None:
            out.pop(k, None)
        elif isinstance(v, list) and isinstance(out.get(k), list) and _merge_key(k, v + out[k]):
            out[k] = _merge_list(out[k], v, _merge_key(k, v + out[k]))
        elif isinstance(v, dict):
            merged = strategic_merge_patch(out.get(k), v, k)
            if merged is None:
                out.pop(k, None)
            else:
                out[k] = merged
        else:
            out[k] = copy.deepcopy(v)
    if retain is not None:
        out = {k: v for k, v in out.items() if k in retain}
    return out


def _merge_list(current, patch, key):
    out = [copy.deepcopy(i) for i in current]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            out.append(copy.deepcopy(item))
            continue
        idx = next((n for n, c in enumerate(out) if isinstance(c, dict) and c.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if idx is not None:
                del out[idx]
            continue
        if idx is None:
            out.append({k: v for k, v in item.items() if k != "$patch"})
        else:
            out[idx] = strategic_merge_patch(out[idx], item)
    return out


# --- /openapi/v2 ---------------------------------------------------------------------------------

def _varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def _field(number, payload):
    """A length-delimited protobuf field (wire type 2)."""
    if isinstance(payload, str):
        payload = payload.encode()
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def openapi_v2_protobuf(version):
    """The OpenAPI v2 document kubectl downloads (Accept: application/com.github.proto-openapi.
    spec.v2@v1.0+protobuf; kubectl 1.20 reads nothing else), encoded by hand from gnostic's
    openapiv2/OpenAPIv2.proto: Document{swagger=1, info=2{title=1, version=2}, paths=8{path=2
    NamedPathItem{name=1, value=2 PathItem{patch=8 Operation{parameters=8, vendor_extension=13}}}}}.

    It holds, for each object path, a PATCH operation tagged x-kubernetes-group-version-kind with
    the query parameters the fake honours (dryRun, fieldManager), which is what kubectl's
    QueryParamVerifier looks for (k/k staging/src/k8s.io/cli-runtime/pkg/resource/
    query_param_verifier.go supportsQueryParam) before it sends ?dryRun=All. It has no schema
    definitions: kubectl skips client-side validation of kinds the document does not define
    (k/k staging/src/k8s.io/kubectl/pkg/util/openapi/validation), and uses the strategic-merge
    metadata compiled into it for built-in kinds. fieldValidation is deliberately not advertised:
    the fake does not check field names, so kubectl must not rely on it to."""
    def query_param(name):
        sub = _field(2, "query") + _field(4, name) + _field(6, "string")      # QueryParameterSubSchema
        return _field(8, _field(1, _field(2, _field(3, sub))))                 # ParametersItem.parameter.non_body.query

    paths = b""
    for r in RESOURCES:
        prefix = f"/apis/{r.group}/{r.version}" if r.group else f"/api/{r.version}"
        ns = "/namespaces/{namespace}" if r.namespaced else ""
        gvk_yaml = f'group: "{r.group}"\nkind: {r.kind}\nversion: {r.version}\n'
        ext = _field(13, _field(1, "x-kubernetes-group-version-kind") + _field(2, _field(2, gvk_yaml)))
        op = query_param("dryRun") + query_param("fieldManager") + _field(5, f"patch{r.kind}") + ext
        item = _field(8, op)
        paths += _field(2, _field(1, f"{prefix}{ns}/{r.plural}/{{name}}") + _field(2, item))
    return (_field(1, "2.0") + _field(2, _field(1, "Kubernetes") + _field(2, version))
            + _field(8, paths))
