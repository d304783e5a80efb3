"""Tables and buckets follow topology.TABLES / topology.BUCKETS and are protected."""

from __future__ import annotations

import pytest

from infra import topology
from tests.infra.conftest import Synthesised, referenced_ids

pytestmark = pytest.mark.infra


def _table(synth: Synthesised, name: str) -> tuple[str, dict]:
    logical_id = synth.logical_id(synth.stack.storage.tables[name])
    return logical_id, synth.json["Resources"][logical_id]


def test_one_table_per_topology_table(synth: Synthesised) -> None:
    assert len(synth.resources("AWS::DynamoDB::Table")) == len(topology.TABLES)


@pytest.mark.parametrize("name", sorted(topology.TABLES))
def test_table_matches_topology(synth: Synthesised, name: str) -> None:
    spec = topology.TABLES[name]
    _, resource = _table(synth, name)
    props = resource["Properties"]

    expected_keys = [{"AttributeName": spec.partition_key, "KeyType": "HASH"}]
    if spec.sort_key:
        expected_keys.append({"AttributeName": spec.sort_key, "KeyType": "RANGE"})
    assert props["KeySchema"] == expected_keys
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert props["SSESpecification"] == {"SSEEnabled": True}  # AWS-managed KMS key

    if spec.ttl_attribute:
        assert props["TimeToLiveSpecification"] == {"AttributeName": spec.ttl_attribute, "Enabled": True}
    else:
        assert "TimeToLiveSpecification" not in props

    indexes = {gsi["IndexName"]: gsi for gsi in props.get("GlobalSecondaryIndexes", [])}
    assert set(indexes) == {index.name for index in spec.indexes}
    for index in spec.indexes:
        gsi = indexes[index.name]
        keys = [{"AttributeName": index.partition_key, "KeyType": "HASH"}]
        if index.sort_key:
            keys.append({"AttributeName": index.sort_key, "KeyType": "RANGE"})
        assert gsi["KeySchema"] == keys
        assert gsi["Projection"] == {"ProjectionType": "ALL"}


def test_tables_are_retained_and_protected_by_default(synth: Synthesised) -> None:
    for name in topology.TABLES:
        _, resource = _table(synth, name)
        assert resource["DeletionPolicy"] == "Retain"
        assert resource["UpdateReplacePolicy"] == "Retain"
        assert resource["Properties"]["DeletionProtectionEnabled"] is True


def test_destroy_stage_can_be_deleted(synth_qa_destroy: Synthesised) -> None:
    for name in topology.TABLES:
        _, resource = _table(synth_qa_destroy, name)
        assert resource["DeletionPolicy"] == "Delete"
        assert resource["Properties"]["DeletionProtectionEnabled"] is False
    for bucket in synth_qa_destroy.resources("AWS::S3::Bucket").values():
        assert bucket["DeletionPolicy"] == "Delete"
    assert synth_qa_destroy.resources("Custom::S3AutoDeleteObjects"), "destroy empties buckets before deleting them"


@pytest.mark.parametrize("name", sorted(topology.BUCKETS))
def test_bucket_is_private_encrypted_ssl_only_and_expires(synth: Synthesised, name: str) -> None:
    spec = topology.BUCKETS[name]
    bucket = synth.stack.storage.buckets[name]
    logical_id = synth.logical_id(bucket)
    props = synth.json["Resources"][logical_id]["Properties"]

    assert props["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert "VersioningConfiguration" not in props
    rules = props["LifecycleConfiguration"]["Rules"]
    assert any(rule["Status"] == "Enabled" and rule["ExpirationInDays"] == spec.expire_after_days for rule in rules)

    access_logs = synth.logical_id(synth.stack.storage.access_logs)
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": access_logs}

    policies = [
        p for p in synth.resources("AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": logical_id}
    ]
    assert len(policies) == 1
    statements = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in statements
    )


def test_access_log_bucket_is_locked_down(synth: Synthesised) -> None:
    logical_id = synth.logical_id(synth.stack.storage.access_logs)
    props = synth.json["Resources"][logical_id]["Properties"]
    assert props["PublicAccessBlockConfiguration"]["BlockPublicPolicy"] is True
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    policy = next(
        p for p in synth.resources("AWS::S3::BucketPolicy").values() if p["Properties"]["Bucket"] == {"Ref": logical_id}
    )
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(s.get("Principal") == {"Service": "logging.s3.amazonaws.com"} for s in statements)
    assert any(s["Effect"] == "Deny" for s in statements)
    assert logical_id in referenced_ids(policy)
