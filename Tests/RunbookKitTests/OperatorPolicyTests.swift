import Foundation
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// `runbook policy`: the IAM actions of the aws CLI's calls, and a policy that allows every call
/// the steps' plans (and destroy's) show.
final class OperatorPolicyTests: XCTestCase {
  func testTheCLIOperationNameMapsToTheIAMActionByTheCLIRuleAndItsExceptions() {
    let cases: [([Argument], [String])] = [
      (["ec2", "create-vpc"], ["ec2:CreateVpc"]),
      (["rds", "create-db-subnet-group"], ["rds:CreateDBSubnetGroup"]),
      (["rds", "describe-db-instances"], ["rds:DescribeDBInstances"]),
      (["elbv2", "create-load-balancer"], ["elasticloadbalancing:CreateLoadBalancer"]),
      (["s3api", "put-object"], ["s3:PutObject"]),
      (["s3api", "list-objects-v2"], ["s3:ListBucket"]),
      (["ecr", "get-login-password"], ["ecr:GetAuthorizationToken"]),
      (["logs", "tail", "/ecs/x"], ["logs:FilterLogEvents"]),
      (["logs", "filter-log-events"], ["logs:FilterLogEvents"]),
      (["rds", "wait", "db-instance-available"], ["rds:DescribeDBInstances"]),
      (["ecs", "wait", "services-stable"], ["ecs:DescribeServices"]),
      (["resourcegroupstaggingapi", "get-resources"], ["tag:GetResources"]),
    ]
    for (arguments, expected) in cases {
      XCTAssertEqual(IAMActions.actions(of: .aws(arguments)), expected, "\(arguments)")
    }
    let login = Command.aws("ecr", "get-login-password").piped(
      into: Command(tool: "docker", arguments: ["login"]))
    XCTAssertEqual(IAMActions.actions(of: login), ["ecr:GetAuthorizationToken"])
    XCTAssertEqual(IAMActions.actions(of: Command(tool: "docker", arguments: ["push"])), [])
  }

  /// The set of operations comes from the plans themselves (every step, every teardown, the
  /// leftover scan), not from a list: a call added to a step and missing from the policy fails.
  func testEveryAWSOperationInThePlanOfEveryStepAndOfDestroyIsAllowed() async throws {
    var fixture = try EngineFixture(test: self)
    fixture.deployment.imageTag = "v1"
    let steps = Catalogue.steps
    let teardowns: [any GuideStep] =
      steps.reversed().map { TeardownStep<Deployment>($0) } + [Catalogue.leftoverScan]
    let engine = fixture.engine(steps, catalogue: steps + teardowns)
    let planned =
      try engine.plan(steps, checkpoint: nil) + engine.plan(teardowns, checkpoint: nil)
    let policy = OperatorPolicy(steps: steps, deployment: fixture.deployment)
    var operations: [String: [String]] = [:]
    for step in planned {
      for action in step.actions where action.kind != "manual" {
        for line in action.command.split(separator: "\n") {
          for part in line.components(separatedBy: " | ") {
            let words = part.split(separator: " ").map(String.init)
            // `aws SERVICE OPERATION`: not `aws --version` (no API call) nor "aws CLI" in a note.
            guard let start = words.firstIndex(of: "aws"), words.count > start + 2,
              words[(start + 1)...(start + 2)].allSatisfy({
                $0.range(of: "^[a-z0-9][a-z0-9-]*$", options: .regularExpression) != nil
              })
            else { continue }
            let arguments = words[(start + 1)...].prefix(3).map { Argument.text($0) }
            operations[words[start + 1] + " " + words[start + 2]] = IAMActions.actions(
              of: .aws(Array(arguments)))
          }
        }
      }
    }
    XCTAssertGreaterThan(operations.count, 60, "\(operations.keys.sorted())")
    for (operation, actions) in operations.sorted(by: { $0.key < $1.key }) {
      XCTAssertFalse(actions.isEmpty, operation)
      for action in actions {
        XCTAssertTrue(policy.actions.contains(action), "\(operation) needs \(action)")
      }
    }
    // And each step alone: its own policy covers its own plan.
    let ecr = try XCTUnwrap(Catalogue.step("ecr"))
    let ecrPolicy = OperatorPolicy(steps: [ecr], deployment: fixture.deployment)
    XCTAssertTrue(ecrPolicy.actions.isSuperset(of: ["ecr:CreateRepository", "ecr:PutImage"]))
    XCTAssertFalse(ecrPolicy.actions.contains("ec2:CreateVpc"))
  }

  /// What AWS checks besides the call: roles handed to ECS and Lambda, the service-linked roles,
  /// tags on create; names where AWS takes them; the S3 state's objects.
  func testThePolicyScopesByNameAndAddsWhatAWSChecksBesidesTheCall() throws {
    let deployment = try localDeployment()
    let policy = OperatorPolicy(
      steps: Catalogue.steps, deployment: deployment,
      s3State: try S3Location.parse("s3://ops-state/runbook/unisync").get())
    let document = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(policy.json().utf8)) as? [String: Any])
    XCTAssertEqual(document["Version"] as? String, "2012-10-17")
    let statements = try XCTUnwrap(document["Statement"] as? [[String: Any]])
    func statement(_ sid: String) -> [String: Any]? {
      statements.first { $0["Sid"] as? String == sid }
    }
    func strings(_ value: Any?) -> [String] {
      (value as? [String]) ?? (value as? String).map { [$0] } ?? []
    }
    let pass = try XCTUnwrap(statement("PassTaskRolesToECS"))
    XCTAssertEqual(strings(pass["Action"]), ["iam:PassRole"])
    XCTAssertEqual(
      strings(pass["Resource"]),
      ["arn:aws:iam::*:role/ecsTaskExecutionRole", "arn:aws:iam::*:role/unisync-ecs-task-role"])
    XCTAssertEqual(
      ((pass["Condition"] as? [String: Any])?["StringEquals"] as? [String: Any])?[
        "iam:PassedToService"] as? String, "ecs-tasks.amazonaws.com")
    let linked = try XCTUnwrap(statement("ServiceLinkedRolesOnFirstUse"))
    XCTAssertEqual(
      strings(
        ((linked["Condition"] as? [String: Any])?["StringEquals"] as? [String: Any])?[
          "iam:AWSServiceName"]),
      ["ecs.amazonaws.com", "elasticloadbalancing.amazonaws.com", "rds.amazonaws.com"])
    let tags = try XCTUnwrap(statement("Ec2TagsOnCreate"))
    XCTAssertTrue(
      strings(
        ((tags["Condition"] as? [String: Any])?["StringEquals"] as? [String: Any])?[
          "ec2:CreateAction"]
      ).contains("CreateVpc"))
    XCTAssertEqual(
      strings(statement("Secretsmanager")?["Resource"]),
      ["arn:aws:secretsmanager:*:*:secret:unisync/*", "arn:aws:secretsmanager:*:*:secret:rds!*"])
    XCTAssertEqual(strings(statement("Ec2")?["Resource"]), ["*"])
    XCTAssertEqual(
      strings(statement("StateObjects")?["Resource"]), ["arn:aws:s3:::ops-state/runbook/unisync/*"])
    XCTAssertEqual(strings(statement("StateListing")?["Resource"]), ["arn:aws:s3:::ops-state"])
    // Every statement names its resources: `*` only where the action takes no other.
    for entry in statements { XCTAssertFalse(strings(entry["Resource"]).isEmpty, "\(entry)") }
    XCTAssertNil(
      statement("StateObjects").flatMap { _ in
        OperatorPolicy(steps: Catalogue.steps, deployment: deployment).statements.first {
          $0.sid == "StateObjects"
        }
      })
  }

  func testPolicyCommandPrintsTheDocumentForTheNamedStepsAndRefusesAnUnknownOne() async throws {
    let session = try FrontendTests.Session(test: self)
    let status = await session.run("policy", "sqs")
    XCTAssertEqual(status, ExitStatus.success, session.errors.text)
    XCTAssertEqual(session.runner.calls, [], "policy runs nothing")
    let document = try XCTUnwrap(
      try JSONSerialization.jsonObject(with: Data(session.output.text.utf8)) as? [String: Any])
    let actions = Set(
      (document["Statement"] as? [[String: Any]] ?? []).flatMap { entry -> [String] in
        (entry["Action"] as? [String]) ?? (entry["Action"] as? String).map { [$0] } ?? []
      })
    XCTAssertTrue(actions.isSuperset(of: ["sqs:CreateQueue", "sqs:DeleteQueue", "sqs:TagQueue"]))
    XCTAssertFalse(actions.contains("iam:PassRole"), "sqs hands no role to anyone")
    // Only a destroy of every step ends with the scan for leftovers (roles found by name, and
    // kin); `drift` of any step looks for extra resources by their tags.
    XCTAssertFalse(actions.contains("iam:ListRoles"), "\(actions.sorted())")
    XCTAssertTrue(actions.contains("tag:GetResources"), "\(actions.sorted())")

    let unknown = try FrontendTests.Session(test: self)
    let refused = await unknown.run("policy", "nosuch")
    XCTAssertEqual(refused, ExitStatus.usage)
    XCTAssertTrue(unknown.errors.text.contains("unknown step 'nosuch'"), unknown.errors.text)
  }
}
