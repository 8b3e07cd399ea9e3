import Foundation
import RunbookEngine
import RunbookProcess

/// The `extra` findings of `runbook drift`: resources carrying this deployment's tags and this
/// checkpoint's lineage (Support/Tagging.swift) that the checkpoint does not record (a duplicate
/// made by copying the tool's tags, a resource an interrupted run made and a later one did not
/// find). Found with the Resource Groups Tagging API, which lists most tagged resources in one
/// call ("GetResources", Resource Groups Tagging API reference:
/// https://docs.aws.amazon.com/resourcegroupstagging/latest/APIReference/API_GetResources.html);
/// IAM roles and, in the local emulator, Elastic IPs and ECR repositories are not in it.
/// Reported only: the tool never deletes what its checkpoint does not record.
extension Deployment {
  package var driftInventory: DriftInventory {
    let filters: Argument =
      "[{\"Key\":\(jsonString(OwnershipTag.deployment)),\"Values\":[\(jsonString(name))]},{\"Key\":\(jsonString(OwnershipTag.lineage)),\"Values\":[\"\(ref: ContextValue.lineage)\"]}]"
    return DriftInventory(
      command: .aws(
        "resourcegroupstaggingapi", "get-resources", "--tag-filters", filters,
        "--query",
        .text(
          "ResourceTagMappingList[].[ResourceARN, Tags[?Key=='\(OwnershipTag.action)'].Value | [0]]"
        ),
        "--output", "text"),
      isRecorded: Self.isRecorded, deletion: Self.deletion)
  }

  /// Whether the checkpoint records the resource `arn`: one of its values is the ARN or its last
  /// part (`vpc-…`, a group's name), or, for a task definition, a revision of the same family (the
  /// revisions of a family are one resource's versions: `update` keeps the previous one to roll
  /// back to).
  static func isRecorded(_ arn: String, _ recorded: Set<String>) -> Bool {
    if recorded.contains(arn) { return true }
    if recorded.contains(where: { arn.hasSuffix("/" + $0) || arn.hasSuffix(":" + $0) }) {
      return true
    }
    if arn.contains(":task-definition/"), let family = arn.range(of: ":", options: .backwards) {
      let prefix = String(arn[..<family.upperBound])
      return recorded.contains { $0.hasPrefix(prefix) }
    }
    return false
  }

  /// The aws command that deletes `arn` (shown, never run), by the service and resource type
  /// its ARN names.
  static func deletion(_ arn: String) -> String {
    let parts = arn.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false).map(
      String.init)
    guard parts.count == 6 else { return "delete \(arn) in its service's console" }
    let service = parts[2]
    let resource = parts[5]
    let kind =
      resource.split(whereSeparator: { $0 == "/" || $0 == ":" }).first.map(String.init) ?? resource
    let last = resource.split(separator: "/").last.map(String.init) ?? resource
    switch (service, kind) {
    case ("ec2", "vpc"): return "aws ec2 delete-vpc --vpc-id \(last)"
    case ("ec2", "subnet"): return "aws ec2 delete-subnet --subnet-id \(last)"
    case ("ec2", "security-group"): return "aws ec2 delete-security-group --group-id \(last)"
    case ("ec2", "internet-gateway"):
      return "aws ec2 delete-internet-gateway --internet-gateway-id \(last) (detach it first)"
    case ("ec2", "natgateway"): return "aws ec2 delete-nat-gateway --nat-gateway-id \(last)"
    case ("ec2", "route-table"): return "aws ec2 delete-route-table --route-table-id \(last)"
    case ("ec2", "elastic-ip"): return "aws ec2 release-address --allocation-id \(last)"
    case ("secretsmanager", _): return "aws secretsmanager delete-secret --secret-id \(arn)"
    case ("ecr", _):
      return
        "aws ecr delete-repository --repository-name \(resource.dropFirst("repository/".count)) --force"
    case ("ecs", "cluster"): return "aws ecs delete-cluster --cluster \(arn)"
    case ("ecs", "service"):
      let names = resource.split(separator: "/").map(String.init)
      return names.count == 3
        ? "aws ecs delete-service --cluster \(names[1]) --service \(names[2]) --force"
        : "aws ecs delete-service --service \(arn) --force"
    case ("ecs", "task-definition"):
      return "aws ecs deregister-task-definition --task-definition \(arn)"
    case ("elasticloadbalancing", "loadbalancer"):
      return "aws elbv2 delete-load-balancer --load-balancer-arn \(arn)"
    case ("elasticloadbalancing", "targetgroup"):
      return "aws elbv2 delete-target-group --target-group-arn \(arn)"
    case ("elasticloadbalancing", "listener"):
      return "aws elbv2 delete-listener --listener-arn \(arn)"
    case ("lambda", _):
      return "aws lambda delete-function --function-name \(arn)"
    case ("sqs", _):
      return
        "aws sqs delete-queue --queue-url \"$(aws sqs get-queue-url --queue-name \(resource) --query QueueUrl --output text)\""
    case ("logs", _):
      let group =
        resource.hasPrefix("log-group:") ? String(resource.dropFirst("log-group:".count)) : resource
      return
        "aws logs delete-log-group --log-group-name \(group.hasSuffix(":*") ? String(group.dropLast(2)) : group)"
    case ("rds", "db"):
      let instance = resource.dropFirst("db:".count)
      return
        "aws rds delete-db-instance --db-instance-identifier \(instance) --final-db-snapshot-identifier \(instance)-final"
    case ("rds", "subgrp"):
      return
        "aws rds delete-db-subnet-group --db-subnet-group-name \(resource.dropFirst("subgrp:".count))"
    case ("servicediscovery", "namespace"):
      return "aws servicediscovery delete-namespace --id \(last)"
    case ("servicediscovery", "service"):
      return "aws servicediscovery delete-service --id \(last)"
    default: return "delete \(arn) in its service's console"
    }
  }
}
