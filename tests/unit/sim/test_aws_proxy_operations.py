"""The simulator's AWS proxy names each call's (service, operation) and region: query-protocol calls
(EC2, AutoScaling) by their ``Action`` and SigV4 credential scope (which also holds the region),
Route53's REST calls by method and path, both for hand-written requests and for requests exactly as
botocore serialises them."""

import boto3
import botocore.config
import pytest

from appliance.sim.aws_proxy import operation_of, region_of


def auth(service: str, region: str = "eu-central-1") -> dict:
    return {"Authorization": f"AWS4-HMAC-SHA256 Credential=testing/20261121/{region}/{service}/aws4_request, "
                             "SignedHeaders=host;x-amz-date, Signature=0123abcd"}


def test_query_protocol_post():
    body = b"Action=DescribeInstances&Version=2016-11-15&Filter.1.Name=tag%3Aaws%3Aautoscaling%3AgroupName"
    assert operation_of("POST", "/", auth("ec2"), body) == ("ec2", "DescribeInstances")


def test_query_protocol_autoscaling():
    body = b"Action=DescribeAutoScalingGroups&Version=2011-01-01"
    assert operation_of("POST", "/", auth("autoscaling"), body) == ("autoscaling", "DescribeAutoScalingGroups")


@pytest.mark.parametrize("method,path,operation", [
    pytest.param("GET", "/2013-04-01/hostedzonesbyname?dnsname=x", "ListHostedZonesByName", id="by-name"),
    pytest.param("GET", "/2013-04-01/hostedzonesbyname?dnsname=sim.internal.&maxitems=10", "ListHostedZonesByName",
                 id="by-name-maxitems"),
    pytest.param("GET", "/2013-04-01/hostedzone/Z1/rrset?name=etcd.sim.internal.", "ListResourceRecordSets",
                 id="list-rrsets"),
    pytest.param("GET", "/2013-04-01/hostedzone/Z1/rrset", "ListResourceRecordSets", id="list-rrsets-bare"),
    pytest.param("POST", "/2013-04-01/hostedzone/Z1/rrset/", "ChangeResourceRecordSets", id="change-rrsets"),
    pytest.param("GET", "/2013-04-01/change/C1", "GetChange", id="get-change"),
    pytest.param("GET", "/2013-04-01/hostedzone/Z1", "GetHostedZone", id="get-zone"),
    pytest.param("GET", "/2013-04-01/hostedzone", "", id="list-zones-unknown"),
    pytest.param("POST", "/2013-04-01/hostedzone", "", id="create-zone-unknown"),
    pytest.param("DELETE", "/2013-04-01/hostedzone/Z1", "", id="delete-zone-unknown"),
])
def test_route53_rest_paths(method, path, operation):
    body = b"" if method == "GET" else b'<?xml version="1.0" encoding="UTF-8"?><X/>'
    assert operation_of(method, path, auth("route53", "us-east-1"), body) == ("route53", operation)


def test_route53_change_with_an_ampersand_in_the_comment():
    body = (b'<?xml version="1.0" encoding="UTF-8"?><ChangeResourceRecordSetsRequest><ChangeBatch>'
            b"<Comment>a &amp; b=c</Comment><Changes><Change><Action>UPSERT</Action></Change></Changes>"
            b"</ChangeBatch></ChangeResourceRecordSetsRequest>")
    assert operation_of("POST", "/2013-04-01/hostedzone/Z1/rrset/", auth("route53", "us-east-1"), body) == (
        "route53", "ChangeResourceRecordSets")


@pytest.mark.parametrize("headers,region", [
    pytest.param(auth("autoscaling", "eu-west-1"), "eu-west-1", id="signed-for-eu-west-1"),
    pytest.param(auth("route53", "us-east-1"), "us-east-1", id="route53-signs-us-east-1"),
    pytest.param({}, "", id="unsigned"),
])
def test_region_of(headers, region):
    assert region_of(headers) == region


def test_no_authorization_header():
    assert operation_of("GET", "/2013-04-01/change/C1", {}, b"") == ("", "")
    assert operation_of("POST", "/", {}, b"Action=DescribeInstances") == ("", "DescribeInstances")


def test_smithy_rpc_v2_names_the_operation_at_the_end_of_its_path():
    path = "/service/GraniteServiceVersion20100801/operation/PutMetricData"
    assert operation_of("POST", path, auth("monitoring"), b"\xbf\xff") == ("monitoring", "PutMetricData")


def test_rest_path_of_another_service_is_not_a_route53_operation():
    assert operation_of("GET", "/2013-04-01/change/C1", auth("sqs"), b"") == ("sqs", "")


class _Captured(Exception):
    pass


def _serialised(service: str, operation: str, **kwargs) -> tuple[str, str, dict, bytes]:
    """(method, path, headers, body) of one call exactly as botocore would send it."""
    session = boto3.session.Session(region_name="eu-central-1", aws_access_key_id="testing",
                                    aws_secret_access_key="testing")
    client = session.client(service, endpoint_url="http://127.0.0.1:9",
                            config=botocore.config.Config(retries={"max_attempts": 0}))
    seen = {}

    def capture(request, **_):
        seen["request"] = request
        raise _Captured()

    client.meta.events.register("before-send", capture)
    with pytest.raises(_Captured):
        getattr(client, operation)(**kwargs)
    request = seen["request"]
    path = request.url.split("127.0.0.1:9", 1)[1]
    headers = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in request.headers.items()}
    body = request.body or b""
    body = body.read() if hasattr(body, "read") else body  # S3 sends a stream
    return request.method, path, headers, body if isinstance(body, bytes) else body.encode()


@pytest.mark.parametrize("service,operation,kwargs,expected", [
    pytest.param("ec2", "describe_instances", {"InstanceIds": ["i-1"]}, ("ec2", "DescribeInstances"), id="ec2"),
    pytest.param("autoscaling", "describe_auto_scaling_groups", {"AutoScalingGroupNames": ["g"]},
                 ("autoscaling", "DescribeAutoScalingGroups"), id="autoscaling"),
    pytest.param("route53", "list_hosted_zones_by_name", {"DNSName": "sim.internal.", "MaxItems": "10"},
                 ("route53", "ListHostedZonesByName"), id="ListHostedZonesByName"),
    pytest.param("route53", "list_resource_record_sets",
                 {"HostedZoneId": "Z1", "StartRecordName": "etcd.sim.internal."},
                 ("route53", "ListResourceRecordSets"), id="ListResourceRecordSets"),
    pytest.param("route53", "list_resource_record_sets", {"HostedZoneId": "/hostedzone/Z1"},
                 ("route53", "ListResourceRecordSets"), id="ListResourceRecordSets-full-id"),
    pytest.param("route53", "change_resource_record_sets",
                 {"HostedZoneId": "Z1", "ChangeBatch": {"Comment": "etcd appliance: UPSERT A x & y", "Changes": [
                     {"Action": "UPSERT", "ResourceRecordSet": {"Name": "etcd.sim.internal.", "Type": "A",
                                                                "TTL": 60,
                                                                "ResourceRecords": [{"Value": "127.0.1.4"}]}}]}},
                 ("route53", "ChangeResourceRecordSets"), id="ChangeResourceRecordSets"),
    pytest.param("route53", "get_change", {"Id": "C1"}, ("route53", "GetChange"), id="GetChange"),
    pytest.param("route53", "get_change", {"Id": "/change/C1"}, ("route53", "GetChange"), id="GetChange-full-id"),
    pytest.param("route53", "get_hosted_zone", {"Id": "Z1"}, ("route53", "GetHostedZone"), id="GetHostedZone"),
    # CloudWatch: botocore's JSON protocol names the operation in X-Amz-Target; the scope's service is "monitoring".
    pytest.param("cloudwatch", "put_metric_data", {"Namespace": "EtcdAppliance", "MetricData": [
        {"MetricName": "HealthyLeader", "Value": 1.0, "Unit": "Count"}]}, ("monitoring", "PutMetricData"),
                 id="PutMetricData"),
    # S3 (path-style, as against a custom endpoint): what the snapshots use.
    pytest.param("s3", "list_objects_v2", {"Bucket": "b", "Prefix": "etcd/snapshots/"}, ("s3", "ListObjectsV2"),
                 id="ListObjectsV2"),
    pytest.param("s3", "get_object", {"Bucket": "b", "Key": "etcd/cluster.json"}, ("s3", "GetObject"), id="GetObject"),
    pytest.param("s3", "head_object", {"Bucket": "b", "Key": "etcd/x.db"}, ("s3", "HeadObject"), id="HeadObject"),
    pytest.param("s3", "put_object", {"Bucket": "b", "Key": "etcd/cluster.json", "Body": b"{}"}, ("s3", "PutObject"),
                 id="PutObject"),
    pytest.param("s3", "delete_object", {"Bucket": "b", "Key": "k"}, ("s3", "DeleteObject"), id="DeleteObject"),
    pytest.param("s3", "delete_objects", {"Bucket": "b", "Delete": {"Objects": [{"Key": "k"}]}},
                 ("s3", "DeleteObjects"), id="DeleteObjects"),
    pytest.param("s3", "create_multipart_upload", {"Bucket": "b", "Key": "k"}, ("s3", "CreateMultipartUpload"),
                 id="CreateMultipartUpload"),
    pytest.param("s3", "upload_part", {"Bucket": "b", "Key": "k", "PartNumber": 1, "UploadId": "u", "Body": b"x"},
                 ("s3", "UploadPart"), id="UploadPart"),
    pytest.param("s3", "complete_multipart_upload", {"Bucket": "b", "Key": "k", "UploadId": "u"},
                 ("s3", "CompleteMultipartUpload"), id="CompleteMultipartUpload"),
    pytest.param("s3", "abort_multipart_upload", {"Bucket": "b", "Key": "k", "UploadId": "u"},
                 ("s3", "AbortMultipartUpload"), id="AbortMultipartUpload"),
])
def test_requests_as_botocore_sends_them(service, operation, kwargs, expected):
    assert operation_of(*_serialised(service, operation, **kwargs)) == expected
