import Foundation
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// Settings applied after a create (issue 16, §6), on resources that existed before the
/// deployment (another team's, in a shared account): the run uses them without changing their
/// settings, and `destroy --yes --force` leaves them whole. (The log group's retention:
/// LogGroupOwnershipTests.swift.)
extension ECRECSLambdaStepTests {
  /// The target group exists in the VPC beforehand with a deregistration delay of 120 s and a
  /// health check of its own. Its name is no owner: without its lineage tag the run stops before
  /// `create-target-group` (CreateTargetGroup hands back an existing group of the same settings)
  /// and before any setting or service, and their group keeps its settings. `--adopt` takes it
  /// over (the configuration's delay, as for any adopted resource), and destroy leaves it, with
  /// its own health check, while the deployment's ALB goes.
  func testATargetGroupThatExistedIsRefusedThenAdoptedAndKeptByDestroy() async throws {
    let names = ResourceNames.other("tgk" + UUID().uuidString.prefix(6).lowercased())
    let workspace = try await seededWorkspace(names, configure: Self.only(["api-gateway"]))
    let vpc = try XCTUnwrap(try workspace.checkpoint().exports["VPC_ID"])
    let made = try await workspace.aws([
      "elbv2", "create-target-group", "--name", names.targetGroup, "--protocol", "HTTP",
      "--port", "9000", "--vpc-id", vpc, "--target-type", "ip", "--health-check-path", "/theirs",
    ])
    let theirs = try XCTUnwrap(
      ((made as? [String: Any])?["TargetGroups"] as? [[String: Any]])?.first?["TargetGroupArn"]
        as? String)
    _ = try await workspace.aws([
      "elbv2", "modify-target-group-attributes", "--target-group-arn", theirs, "--attributes",
      #"[{"Key":"deregistration_delay.timeout_seconds","Value":"120"}]"#,
    ])
    func settings() async throws -> (delay: String?, path: String?) {
      let attributes = try await workspace.aws([
        "elbv2", "describe-target-group-attributes", "--target-group-arn", theirs,
      ])
      let delay =
        ((attributes as? [String: Any])?["Attributes"] as? [[String: Any]])?.first {
          $0["Key"] as? String == "deregistration_delay.timeout_seconds"
        }?["Value"] as? String
      let groups = try await workspace.aws([
        "elbv2", "describe-target-groups", "--target-group-arns", theirs,
      ])
      let path =
        ((groups as? [String: Any])?["TargetGroups"] as? [[String: Any]])?.first?[
          "HealthCheckPath"] as? String
      return (delay, path)
    }

    let refused = try await workspace.runLogged(["run", "ecr", "ecs", "--yes"])
    XCTAssertEqual(refused.run.status, 1, refused.run.summary)
    XCTAssertTrue(
      refused.run.stderr.contains("target group '\(names.targetGroup)' exists already"),
      refused.run.stderr)
    XCTAssertTrue(refused.run.stderr.contains("pass --adopt"), refused.run.stderr)
    let changes = refused.calls.compactMap { $0["argv"] as? [String] }.filter {
      [
        "create-target-group", "modify-target-group-attributes", "create-listener",
        "create-service",
      ]
      .contains($0.dropFirst().first)
    }
    XCTAssertEqual(changes.count, 0, "their target group was taken or changed: \(changes)")
    XCTAssertNil(try workspace.checkpoint().exports["TG_ARN"])
    let afterRefusal = try await settings()
    XCTAssertEqual(afterRefusal.delay, "120")
    XCTAssertEqual(afterRefusal.path, "/theirs")

    let adopted = try await workspace.runLogged(["run", "ecr", "ecs", "--yes", "--adopt"])
    XCTAssertEqual(adopted.run.status, 0, adopted.run.summary)
    let checkpoint = try workspace.checkpoint()
    XCTAssertEqual(checkpoint.record("ecs", "target-group")?.outcome, .adopted)
    XCTAssertEqual(checkpoint.exports["TG_ARN"], theirs)
    let created = adopted.calls.compactMap { $0["argv"] as? [String] }.filter {
      $0.dropFirst().first == "create-target-group"
    }
    XCTAssertEqual(created.count, 0, "a second target group: \(created)")
    let afterAdopt = try await settings()
    XCTAssertNotEqual(afterAdopt.delay, "120", "adopted: the configuration's delay applies")
    XCTAssertEqual(afterAdopt.path, "/theirs")

    let destroy = try await workspace.run(["destroy", "ecs", "ecr", "--yes", "--force"])
    XCTAssertEqual(destroy.status, 0, destroy.summary)
    XCTAssertTrue(
      destroy.stdout.contains(
        "= delete-target-group: delete target group \(names.targetGroup) (kept"),
      destroy.stdout)
    let afterDestroy = try await settings()
    XCTAssertEqual(afterDestroy.delay, afterAdopt.delay, "their target group is still there")
    XCTAssertEqual(afterDestroy.path, "/theirs")
    let balancers = try await workspace.aws(["elbv2", "describe-load-balancers"])
    let left = ((balancers as? [String: Any])?["LoadBalancers"] as? [[String: Any]] ?? [])
      .compactMap { $0["LoadBalancerName"] as? String }
    XCTAssertFalse(left.contains(names.loadBalancer), "the deployment's own ALB is deleted")
  }

  /// The Lambda role exists beforehand with one managed policy and an inline policy of the name
  /// the tool uses (`SQSAndSecretsManagerAccess`), with that team's own document: the run uses
  /// the role (already done) without attaching a policy or replacing the inline document, and
  /// destroy leaves the role with exactly what it had.
  func testALambdaRoleThatExistedKeepsItsPoliciesThroughRunAndDestroy() async throws {
    let names = ResourceNames.other("rlk" + UUID().uuidString.prefix(6).lowercased())
    let workspace = try await seededWorkspace(names)
    let role = names.lambdaRole
    let vpcAccess = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
    let document =
      #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sqs:GetQueueUrl"],"Resource":["arn:aws:sqs:*:*:their-queue"]}]}"#
    _ = try await workspace.aws([
      "iam", "create-role", "--role-name", role, "--assume-role-policy-document",
      #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
    ])
    _ = try await workspace.aws([
      "iam", "attach-role-policy", "--role-name", role, "--policy-arn", vpcAccess,
    ])
    _ = try await workspace.aws([
      "iam", "put-role-policy", "--role-name", role, "--policy-name", "SQSAndSecretsManagerAccess",
      "--policy-document", document,
    ])
    func policies() async throws -> (attached: [String], inline: [String], document: JSONValue?) {
      let attached = try await workspace.aws([
        "iam", "list-attached-role-policies", "--role-name", role,
      ])
      let arns = ((attached as? [String: Any])?["AttachedPolicies"] as? [[String: Any]] ?? [])
        .compactMap { $0["PolicyArn"] as? String }
      let inline = try await workspace.aws(["iam", "list-role-policies", "--role-name", role])
      let names = (inline as? [String: Any])?["PolicyNames"] as? [String] ?? []
      let policy = try await workspace.aws([
        "iam", "get-role-policy", "--role-name", role, "--policy-name",
        "SQSAndSecretsManagerAccess",
      ])
      let body = (policy as? [String: Any])?["PolicyDocument"]
      let text = body.flatMap { try? JSONSerialization.data(withJSONObject: $0) }.flatMap {
        String(data: $0, encoding: .utf8)
      }
      return (arns.sorted(), names.sorted(), text.flatMap { JSONValue(parsing: $0) })
    }
    let wanted = JSONValue(parsing: document)

    let run = try await workspace.runLogged(["run", "lambda", "--yes"])
    XCTAssertEqual(run.run.status, 0, run.run.summary)
    let onTheirRole = run.calls.filter { call in
      let argv = call["argv"] as? [String] ?? []
      return ["attach-role-policy", "put-role-policy"].contains(argv.dropFirst().first ?? "")
        && argv.firstIndex(of: "--role-name").map { argv[$0 + 1] } == role
    }
    XCTAssertEqual(onTheirRole.count, 0, "their role was changed: \(onTheirRole)")
    let checkpoint = try workspace.checkpoint()
    XCTAssertEqual(checkpoint.record("lambda", "role")?.outcome, .alreadyDone)
    for action in [
      "role-AWSLambdaBasicExecutionRole", "role-AWSLambdaVPCAccessExecutionRole",
      "role-SQSAndSecretsManagerAccess",
    ] {
      XCTAssertEqual(checkpoint.record("lambda", action)?.status, .done, action)
    }
    XCTAssertNotNil(checkpoint.exports["LAMBDA_ARN"], "the function runs with their role")
    XCTAssertTrue(
      run.run.stdout.contains("role-SQSAndSecretsManagerAccess")
        && run.run.stdout.contains("it existed already"), run.run.stdout)
    let afterRun = try await policies()
    XCTAssertEqual(afterRun.attached, [vpcAccess])
    XCTAssertEqual(afterRun.inline, ["SQSAndSecretsManagerAccess"])
    XCTAssertEqual(afterRun.document, wanted, "their inline document was replaced")

    let destroy = try await workspace.run(["destroy", "lambda", "--yes", "--force"])
    XCTAssertEqual(destroy.status, 0, destroy.summary)
    XCTAssertTrue(
      destroy.stdout.contains("= delete-role: delete IAM role \(role) (kept"), destroy.stdout)
    let afterDestroy = try await policies()
    XCTAssertEqual(afterDestroy.attached, [vpcAccess], "their role keeps its policy")
    XCTAssertEqual(afterDestroy.inline, ["SQSAndSecretsManagerAccess"])
    XCTAssertEqual(afterDestroy.document, wanted)
  }

  /// The cluster exists beforehand with a service named `user-service` running another team's
  /// task definition: the run records both as already there and never moves that service to the
  /// deployment's revision (no `update-service` for it), and destroy keeps the service, its task
  /// definition and desired count, and the cluster, while the deployment's own services go.
  func testAServiceThatExistedKeepsItsTaskDefinitionThroughRunAndDestroy() async throws {
    let names = ResourceNames.other("svk" + UUID().uuidString.prefix(6).lowercased())
    let workspace = try await seededWorkspace(names)
    _ = try await workspace.aws(["ecs", "create-cluster", "--cluster-name", names.cluster])
    let registered = try await workspace.aws([
      "ecs", "register-task-definition", "--family", "\(names.prefix)-theirs",
      "--container-definitions", #"[{"name":"theirs","image":"nginx","memory":128}]"#,
    ])
    let theirs = try XCTUnwrap(
      ((registered as? [String: Any])?["taskDefinition"] as? [String: Any])?["taskDefinitionArn"]
        as? String)
    _ = try await workspace.aws([
      "ecs", "create-service", "--cluster", names.cluster, "--service-name", "user-service",
      "--task-definition", theirs, "--desired-count", "1",
    ])
    func services() async throws -> [String: String] {
      let listed = try await workspace.aws(["ecs", "list-services", "--cluster", names.cluster])
      let arns = (listed as? [String: Any])?["serviceArns"] as? [String] ?? []
      guard !arns.isEmpty else { return [:] }
      let described = try await workspace.aws(
        ["ecs", "describe-services", "--cluster", names.cluster, "--services"] + arns)
      var result: [String: String] = [:]
      for service in (described as? [String: Any])?["services"] as? [[String: Any]] ?? []
      where service["status"] as? String == "ACTIVE" {
        if let name = service["serviceName"] as? String {
          result[name] =
            "\(service["taskDefinition"] as? String ?? "?") x\(service["desiredCount"] as? Int ?? -1)"
        }
      }
      return result
    }

    let run = try await workspace.runLogged(["run", "ecr", "ecs", "lambda", "--yes"])
    XCTAssertEqual(run.run.status, 0, run.run.summary)
    let updates = run.calls.filter { call in
      let argv = call["argv"] as? [String] ?? []
      return argv.prefix(2) == ["ecs", "update-service"]
        && argv.firstIndex(of: "--service").map { argv[$0 + 1] } == "user-service"
    }
    XCTAssertEqual(updates.count, 0, "their service was moved: \(updates)")
    let checkpoint = try workspace.checkpoint()
    XCTAssertEqual(checkpoint.record("ecs", "cluster")?.outcome, .alreadyDone)
    XCTAssertEqual(checkpoint.record("ecs", "service-user-service")?.outcome, .alreadyDone)
    XCTAssertEqual(checkpoint.record("ecs", "service-revision-user-service")?.status, .done)
    XCTAssertEqual(checkpoint.record("ecs", "service-course-service")?.outcome, .created)
    let afterRun = try await services()
    XCTAssertEqual(afterRun["user-service"], "\(theirs) x1")
    XCTAssertEqual(afterRun.count, 4, "\(afterRun)")

    let destroy = try await workspace.run(["destroy", "lambda", "ecs", "ecr", "--yes", "--force"])
    XCTAssertEqual(destroy.status, 0, destroy.summary)
    XCTAssertTrue(
      destroy.stdout.contains("= delete-service-user-service: delete service user-service (kept"),
      destroy.stdout)
    let afterDestroy = try await services()
    XCTAssertEqual(
      afterDestroy, ["user-service": "\(theirs) x1"],
      "only their service is left, as it was, in their cluster")
  }
}
