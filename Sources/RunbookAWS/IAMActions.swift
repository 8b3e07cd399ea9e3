import Foundation
import RunbookProcess

/// The IAM action an aws CLI call is authorized as (`ec2 create-vpc` -> `ec2:CreateVpc`).
///
/// The CLI names an operation after its API name by botocore's rule (`CreateDBInstance` ->
/// `create-db-instance`: words split at capitals, lower-cased, joined by `-`); IAM names the action
/// after the API name, under the service's prefix. The rule is undone word by word, with the
/// capitalisations the rule loses (`DB`) restored per service, and a table for the calls that are
/// no API operation (`ecr get-login-password`, `logs tail`, waiters, `s3` transfers).
/// Service Authorization Reference:
/// https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html
package enum IAMActions {
  /// The IAM prefix of each aws CLI service the tool calls (where they differ: `elbv2`, `s3api`).
  package static let prefixes: [String: String] = [
    "elbv2": "elasticloadbalancing", "s3api": "s3", "s3": "s3",
    "resourcegroupstaggingapi": "tag", "application-autoscaling": "application-autoscaling",
  ]

  /// Calls that are no API operation of their own, or whose IAM action differs from the name.
  package static let exceptions: [String: [String]] = [
    // A helper around GetAuthorizationToken (AWS CLI reference, ecr get-login-password).
    "ecr get-login-password": ["ecr:GetAuthorizationToken"],
    // `logs tail` pages through FilterLogEvents (AWS CLI v2 reference, logs tail).
    "logs tail": ["logs:FilterLogEvents"],
    // ListObjectsV2 and HeadObject are authorized as ListBucket and GetObject (Amazon S3 API
    // reference, Permissions).
    "s3api list-objects-v2": ["s3:ListBucket"],
    "s3api head-object": ["s3:GetObject"],
    "s3 cp": ["s3:GetObject", "s3:PutObject"],
    "s3 ls": ["s3:ListBucket"],
    "s3 rm": ["s3:DeleteObject"],
  ]

  /// Words the CLI's rule lower-cases that the API name spells otherwise, per service.
  static let acronyms: [String: [String: String]] = [
    "rds": ["db": "DB"]
  ]

  /// The describe call each waiter polls (botocore's waiters: `db-instance-available` polls
  /// DescribeDBInstances).
  static let waiters: [String: String] = [
    "ec2": "Describe", "rds": "Describe", "ecs": "Describe", "elbv2": "Describe",
    "lambda": "Get",
  ]

  /// The IAM actions of one command (and the command it pipes into); empty for another tool.
  package static func actions(of command: Command) -> [String] {
    var found: [String] = []
    if command.tool == AWSCLI.tool, command.arguments.count >= 2 {
      let service = command.arguments[0].description
      let operation = command.arguments[1].description
      if operation == "wait", command.arguments.count >= 3 {
        found += waiterAction(service: service, waiter: command.arguments[2].description)
      } else {
        found += actions(service: service, operation: operation)
      }
    }
    return found + command.pipedInto.flatMap(actions(of:))
  }

  /// The IAM actions of `aws SERVICE OPERATION`.
  package static func actions(service: String, operation: String) -> [String] {
    if let listed = exceptions["\(service) \(operation)"] { return listed }
    return [prefix(service) + ":" + apiName(service: service, operation: operation)]
  }

  /// The IAM prefix of an aws CLI service.
  package static func prefix(_ service: String) -> String { prefixes[service] ?? service }

  /// `create-db-subnet-group` -> `CreateDBSubnetGroup` (for rds).
  static func apiName(service: String, operation: String) -> String {
    let special = acronyms[service] ?? [:]
    return operation.split(separator: "-").map { word in
      special[String(word)] ?? word.prefix(1).uppercased() + word.dropFirst()
    }.joined()
  }

  /// A waiter polls the describe (or get) call of its resource, plural as the API names it:
  /// `rds wait db-instance-available` -> `rds:DescribeDBInstances`.
  static func waiterAction(service: String, waiter: String) -> [String] {
    let words = waiter.split(separator: "-").map(String.init)
    // The resource is every word before the state (`available`, `exists`, `deleted`, ...).
    let resource = words.dropLast().map { $0 }
    guard !resource.isEmpty else { return [] }
    let verb = waiters[service] ?? "Describe"
    let name = resource.joined(separator: "-")
    let plural = name + (verb == "Get" || name.hasSuffix("s") ? "" : "s")
    return [prefix(service) + ":" + verb + apiName(service: service, operation: plural)]
  }
}
