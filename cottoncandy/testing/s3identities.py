"""Who may talk to the authenticating local S3 endpoint: an IAM user, a role it assumes, keys that no longer work.

Made through moto's own IAM and STS APIs (boto3 calls against the server, before it starts checking),
so the keys are exactly what moto will verify every later request against:

* ``user``: an IAM user's access key pair, with an inline policy allowing ``s3:*`` on everything;
* ``role``: temporary keys from ``sts:AssumeRole`` of a role that trusts the user (``ASIA...`` access
  key, secret and a session token that must be sent as ``X-Amz-Security-Token``);
* ``revoked``: a second access key of the user, deleted again: a key that existed and no longer does.

A request signed with a wrong secret answers 403 ``SignatureDoesNotMatch``; an unknown or revoked key
403 ``InvalidAccessKeyId``; role keys without (or with a wrong) token 403 as well.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

USER = "cottoncandy-tests"
ROLE = "cottoncandy-tests-role"
ALLOW_S3 = json.dumps({"Version": "2012-10-17",
                       "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"}]})


@dataclass(frozen=True)
class Keys:
    """One set of AWS credentials (``session_token`` only for temporary keys); the repr shows no secret
    (a failing test prints its fixtures)."""

    access_key: str
    secret_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)

    def environment(self) -> dict[str, str]:
        """The ``AWS_*`` variables that give these keys to boto3 (and to a child process)."""
        env = {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env


@dataclass(frozen=True)
class Identities:
    user: Keys
    role: Keys
    revoked: Keys
    role_arn: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Identities:
        return cls(Keys(**data["user"]), Keys(**data["role"]), Keys(**data["revoked"]), data["role_arn"])


def make_identities(endpoint_url: str, verify: Any = None) -> Identities:
    """Create the user, its keys and the role on the server at ``endpoint_url`` (not checking yet)."""
    import boto3

    def client(service: str, keys: Keys | None = None) -> Any:
        keys = keys or Keys("bootstrap", "bootstrap")
        return boto3.session.Session().client(
            service, endpoint_url=endpoint_url, region_name="us-east-1", verify=verify,
            aws_access_key_id=keys.access_key, aws_secret_access_key=keys.secret_key)

    iam = client("iam")
    user_arn = iam.create_user(UserName=USER)["User"]["Arn"]
    iam.put_user_policy(UserName=USER, PolicyName="s3-all", PolicyDocument=ALLOW_S3)
    iam.put_user_policy(UserName=USER, PolicyName="assume-role", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}))
    made = iam.create_access_key(UserName=USER)["AccessKey"]
    user = Keys(made["AccessKeyId"], made["SecretAccessKey"])
    gone = iam.create_access_key(UserName=USER)["AccessKey"]
    iam.delete_access_key(UserName=USER, AccessKeyId=gone["AccessKeyId"])
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": user_arn}, "Action": "sts:AssumeRole"}]}
    role_arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=ROLE, PolicyName="s3-all", PolicyDocument=ALLOW_S3)
    assumed = client("sts", user).assume_role(RoleArn=role_arn, RoleSessionName="tests",
                                              DurationSeconds=12 * 3600)["Credentials"]
    role = Keys(assumed["AccessKeyId"], assumed["SecretAccessKey"], assumed["SessionToken"])
    return Identities(user, role, Keys(gone["AccessKeyId"], gone["SecretAccessKey"]), role_arn)
