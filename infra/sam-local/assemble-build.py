"""What `sam build` leaves in .aws-sam/build, from `make build-lambdas`' output: each function's cargo-lambda
bootstrap in .aws-sam/build/<LogicalId>/bootstrap, and the template with each function's CodeUri pointing there.
`sam local` then runs the functions exactly as after `sam build`.

`sam build` itself runs `cargo lambda build --release --bin <name>` once per function; each resolves its own
dependency features and recompiles (4 to 6 minutes a function on a 2-core machine), where `make build-lambdas`
builds the four in one cargo run that CI already does. Same compiler, same profile, same bootstrap names.

Usage: .venv/bin/python infra/sam-local/assemble-build.py TEMPLATE LAMBDA_DIR BUILD_DIR
(LAMBDA_DIR: cargo-lambda's target/lambda, holding <binary>/bootstrap)
"""

import os
import shutil
import sys

from samcli.yamlhelper import yaml_dump, yaml_parse


def main(template_path, lambda_dir, build_dir):
    with open(template_path, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    os.makedirs(build_dir, exist_ok=True)
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        metadata = resource.get("Metadata", {})
        if metadata.get("BuildMethod") != "rust-cargolambda":
            sys.exit(f"{logical_id}: BuildMethod {metadata.get('BuildMethod')!r}, not rust-cargolambda")
        binary = metadata["BuildProperties"]["Binary"]
        bootstrap = os.path.join(lambda_dir, binary, "bootstrap")
        if not os.path.isfile(bootstrap):
            sys.exit(f"{logical_id}: no {bootstrap} (run make build-lambdas)")
        target = os.path.join(build_dir, logical_id)
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(target)
        shutil.copy2(bootstrap, os.path.join(target, "bootstrap"))
        resource["Properties"]["CodeUri"] = logical_id
        # As `sam build` marks what it built, so `sam local` does not look for a build method to run.
        resource["Metadata"] = {**metadata, "SamResourceId": logical_id}
        print(f"{logical_id}: {bootstrap}")
    with open(os.path.join(build_dir, "template.yaml"), "w", encoding="utf-8") as f:
        f.write(yaml_dump(template))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
