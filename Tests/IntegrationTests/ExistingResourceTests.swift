import Foundation
import RunbookState
import XCTest

/// Creates whose API can hand over a resource that exists already (issue 16, §6), when another
/// team made one of the same name in a shared account: the step stops before anything is added
/// to it, changed on it or pushed into it, says that `--adopt` takes it over, and `destroy`
/// leaves it whole. (Settings on what existed: SettingOwnershipTests.swift.)
final class ExistingResourceTests: XCTestCase {
  /// A workspace whose checkpoint holds the finished earlier steps (network to secrets), as the
  /// ECR, ECS and Lambda tests start from, configured with only the services named (each one
  /// fewer is an image, a task definition, a service and their calls fewer).
  func seededWorkspace(_ names: ResourceNames, services: Set<String>, name: String = #function)
    async throws -> Workspace
  {
    try await ECRECSLambdaStepTests(name: "ExistingResourceTests", testClosure: { _ in })
      .seededWorkspace(names, name: name, configure: ECRECSLambdaStepTests.only(services))
  }

  /// Their ALB, of the configuration's name, in the deployment's VPC, with a port 80 listener
  /// forwarding to their target group: `run` stops at the ALB (CreateLoadBalancer would return
  /// it as if new), never adds or points a listener at the deployment's target group, and
  /// `destroy` deletes none of it.
  func testAnALBThatExistedIsNeitherTakenNorChanged() async throws {
    let names = ResourceNames.other("alb" + UUID().uuidString.prefix(6).lowercased())
    let workspace = try await seededWorkspace(names, services: ["api-gateway"])
    let exports = try workspace.checkpoint().exports
    let vpc = try XCTUnwrap(exports["VPC_ID"])
    let subnets = try [
      XCTUnwrap(exports["SUBNET_PUBLIC_2A"]), XCTUnwrap(exports["SUBNET_PUBLIC_2C"]),
    ]
    let group = try await workspace.aws([
      "elbv2", "create-target-group", "--name", "\(names.prefix)-theirs", "--protocol", "HTTP",
      "--port", "9000", "--vpc-id", vpc, "--target-type", "ip",
    ])
    let theirGroup = try XCTUnwrap(
      ((group as? [String: Any])?["TargetGroups"] as? [[String: Any]])?.first?["TargetGroupArn"]
        as? String)
    let balancer = try await workspace.aws(
      ["elbv2", "create-load-balancer", "--name", names.loadBalancer, "--subnets"] + subnets)
    let theirBalancer = try XCTUnwrap(
      ((balancer as? [String: Any])?["LoadBalancers"] as? [[String: Any]])?.first?[
        "LoadBalancerArn"] as? String)
    _ = try await workspace.aws([
      "elbv2", "create-listener", "--load-balancer-arn", theirBalancer, "--protocol", "HTTP",
      "--port", "80", "--default-actions",
      #"[{"Type":"forward","TargetGroupArn":"\#(theirGroup)"}]"#,
    ])
    func listeners() async throws -> [String] {
      let described = try await workspace.aws([
        "elbv2", "describe-listeners", "--load-balancer-arn", theirBalancer,
      ])
      return ((described as? [String: Any])?["Listeners"] as? [[String: Any]] ?? []).map {
        let actions = $0["DefaultActions"] as? [[String: Any]] ?? []
        return "\($0["Port"] as? Int ?? 0) -> \(actions.first?["TargetGroupArn"] as? String ?? "?")"
      }
    }

    let run = try await workspace.runLogged(["run", "ecr", "ecs", "--yes"])
    XCTAssertEqual(run.run.status, 1, run.run.summary)
    XCTAssertTrue(
      run.run.stderr.contains("ALB '\(names.loadBalancer)' exists already"), run.run.stderr)
    XCTAssertTrue(run.run.stderr.contains("pass --adopt"), run.run.stderr)
    let changes = run.calls.compactMap { $0["argv"] as? [String] }.filter {
      ["create-load-balancer", "create-listener", "modify-listener"].contains($0.dropFirst().first)
    }
    XCTAssertEqual(changes.count, 0, "their ALB was taken or changed: \(changes)")
    XCTAssertNil(try workspace.checkpoint().exports["ALB_ARN"])
    let afterRun = try await listeners()
    XCTAssertEqual(afterRun, ["80 -> \(theirGroup)"])

    let destroy = try await workspace.run(["destroy", "ecs", "ecr", "--yes", "--force"])
    XCTAssertEqual(destroy.status, 0, destroy.summary)
    let afterDestroy = try await listeners()
    XCTAssertEqual(
      afterDestroy, ["80 -> \(theirGroup)"], "their ALB and its listener are left whole")
  }

  /// Their repository, of the name the deployment's gateway would get, without the
  /// deployment's tags: `run ecr` stops at it with nothing pushed to it (a push would move its
  /// `latest`); `--adopt` uses it; `destroy` leaves it.
  func testARepositoryThatExistedIsNotPushedToWithoutAdopt() async throws {
    let names = ResourceNames.other("rep" + UUID().uuidString.prefix(6).lowercased())
    let workspace = try await seededWorkspace(names, services: ["api-gateway", "user-service"])
    let repository = "\(names.prefix)/api-gateway"
    _ = try await workspace.aws(["ecr", "create-repository", "--repository-name", repository])
    let dockerLog = workspace.directory.appendingPathComponent("docker-existing.log").path
    workspace.environment["RUNBOOK_DOCKER_LOG"] = dockerLog
    func pushes(of service: String) -> [[String]] {
      loggedAWSCalls(dockerLog).compactMap { $0["argv"] as? [String] }.filter {
        $0.first == "push" && $0.contains { $0.contains("/\(names.prefix)/\(service):") }
      }
    }

    let refused = try await workspace.run(["run", "ecr", "--yes"])
    XCTAssertEqual(refused.status, 1, refused.summary)
    XCTAssertTrue(
      refused.stderr.contains(
        "create ECR repository \(repository) (scan on push): it already exists, but without this deployment's ownership tags"
      ), refused.stderr)
    XCTAssertTrue(refused.stderr.contains("pass --adopt"), refused.stderr)
    XCTAssertEqual(pushes(of: "api-gateway"), [], "an image was pushed to their repository")
    XCTAssertNil(try workspace.checkpoint().exports["REPO_URI_API_GATEWAY"])

    let adopted = try await workspace.run(["run", "ecr", "--yes", "--adopt"])
    XCTAssertEqual(adopted.status, 0, adopted.summary)
    XCTAssertEqual(
      try workspace.checkpoint().record("ecr", "repository-api-gateway")?.outcome, .adopted)
    XCTAssertEqual(
      try workspace.checkpoint().record("ecr", "repository-user-service")?.outcome, .created)
    XCTAssertFalse(pushes(of: "api-gateway").isEmpty)

    let destroy = try await workspace.run(["destroy", "ecr", "--yes", "--force"])
    XCTAssertEqual(destroy.status, 0, destroy.summary)
    let left = try await workspace.aws(["ecr", "describe-repositories"])
    let repositories = ((left as? [String: Any])?["repositories"] as? [[String: Any]] ?? [])
      .compactMap { $0["repositoryName"] as? String }.filter { $0.hasPrefix(names.prefix + "/") }
    XCTAssertEqual(repositories, [repository], "only their repository is left")
  }

  /// Their task definition family, of the name the deployment's gateway would use, its
  /// latest revision without the deployment's tag: `run` registers nothing into it (a new
  /// revision would become the family's latest) and says which setting gives the deployment a
  /// family of its own; `destroy` deregisters none of theirs.
  func testATaskDefinitionFamilyOfAnotherIsNotRegisteredInto() async throws {
    let names = ResourceNames.other("tdf" + UUID().uuidString.prefix(6).lowercased())
    let workspace = try await seededWorkspace(names, services: ["api-gateway"])
    let family = "\(names.prefix)-api-gateway"
    _ = try await workspace.aws([
      "ecs", "register-task-definition", "--family", family, "--container-definitions",
      #"[{"name":"theirs","image":"nginx","memory":128}]"#,
    ])
    func active() async throws -> [String] {
      let listed = try await workspace.aws([
        "ecs", "list-task-definitions", "--family-prefix", family, "--status", "ACTIVE",
      ])
      return (listed as? [String: Any])?["taskDefinitionArns"] as? [String] ?? []
    }
    let theirs = try await active()
    XCTAssertEqual(theirs.count, 1)

    let run = try await workspace.run(["run", "ecr", "ecs", "--yes"])
    XCTAssertEqual(run.status, 1, run.summary)
    XCTAssertTrue(
      run.stderr.contains("task definition family '\(family)' has revisions"), run.stderr)
    XCTAssertTrue(run.stderr.contains("ecs.familyPrefix"), run.stderr)
    let afterRun = try await active()
    XCTAssertEqual(afterRun, theirs, "a revision was registered into their family")

    let destroy = try await workspace.run(["destroy", "ecs", "ecr", "--yes", "--force"])
    XCTAssertEqual(destroy.status, 0, destroy.summary)
    let afterDestroy = try await active()
    XCTAssertEqual(afterDestroy, theirs, "their revision is still active")
  }
}
