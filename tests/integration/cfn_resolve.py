"""Templates as CloudFormation resolves them for given parameter values: the resources kept, the UserData an
instance runs, the outputs. Enough of CloudFormation's intrinsic functions for these templates (Ref, Fn::Sub,
Fn::If, Fn::Join and the condition functions); tests/integration/test_template_deploy.py checks the result
against moto's own resolution."""

import re

# The template as CloudFormation resolves it, for the values a test gives (the rest: the parameters' defaults).
PSEUDO = {"AWS::StackName": "etcd-prod", "AWS::Region": "eu-central-1", "AWS::AccountId": "123456789012",
          "AWS::Partition": "aws",
          "AWS::StackId": "arn:aws:cloudformation:eu-central-1:123456789012:stack/etcd-prod/0f2c1e70-0000-4000-8000-1"}


def resolve(template: dict, node, parameters: dict[str, str]):
    """``node`` with Ref, Fn::Sub, Fn::If, Fn::Join, Fn::FindInMap and the template's conditions resolved as
    CloudFormation would for ``parameters`` (name -> value; defaults fill the others) and the pseudo parameters
    of ``PSEUDO``; AWS::NoValue drops the entry. A resource's Ref or Fn::GetAtt becomes ``<Name>`` or
    ``<Name.Attribute>``. Raises KeyError for an intrinsic function it does not know."""
    values = {name: str(p.get("Default", "")) for name, p in template["Parameters"].items()}
    values.update(PSEUDO, **parameters)

    def condition(expr) -> bool:
        if isinstance(expr, dict):
            (fn, arg), = expr.items()
            return {"Fn::Not": lambda: not condition(arg[0]),
                    "Fn::Equals": lambda: walk(arg[0]) == walk(arg[1]),
                    "Fn::And": lambda: all(condition(a) for a in arg),
                    "Fn::Or": lambda: any(condition(a) for a in arg),
                    "Condition": lambda: condition(template["Conditions"][arg])}[fn]()
        return expr

    def sub(text: str, variables: dict) -> str:
        return re.sub(r"\$\{([^}!]+)\}", lambda m: str(variables.get(m[1], values.get(m[1], m[0]))), text)

    def walk(n):
        if isinstance(n, list):
            return [v for v in map(walk, n) if v is not NO_VALUE]
        if not isinstance(n, dict):
            return n
        if len(n) == 1 and next(iter(n)) in ("Ref", "Fn::Sub", "Fn::If", "Fn::Join", "Fn::GetAtt", "Fn::FindInMap"):
            (fn, arg), = n.items()
            if fn == "Ref":  # a resource's: a stand-in for its physical id
                return NO_VALUE if arg == "AWS::NoValue" else values.get(arg, f"<{arg}>")
            if fn == "Fn::GetAtt":
                return f"<{'.'.join(arg) if isinstance(arg, list) else arg}>"
            if fn == "Fn::FindInMap":
                mapping, key, attribute = walk(arg)
                return template["Mappings"][mapping][key][attribute]
            if fn == "Fn::If":
                return walk(arg[1] if condition(template["Conditions"][arg[0]]) else arg[2])
            if fn == "Fn::Join":
                return walk(arg[0]).join(walk(arg[1]))
            text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], walk(arg[1]))
            return sub(text, variables)
        if any(k.startswith("Fn::") for k in n):
            raise KeyError(f"not resolved here: {sorted(n)}")
        return {k: v for k, v in ((k, walk(v)) for k, v in n.items()) if v is not NO_VALUE}

    return walk(node)


NO_VALUE = object()


def rendered_user_data(template: dict, parameters: dict[str, str]) -> str:
    """The UserData script an instance runs (before Base64) for ``parameters``."""
    return resolve(template, template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"][
        "Fn::Base64"], parameters)


def kept(template: dict, parameters: dict[str, str]) -> dict:
    """The resources CloudFormation creates for ``parameters``: those whose Condition holds, or that have none."""
    conditions = {"Conditions": template["Conditions"], "Parameters": template["Parameters"]}
    return {name: r for name, r in template["Resources"].items()
            if "Condition" not in r or resolve(conditions, {"Fn::If": [r["Condition"], True, False]}, parameters)}
