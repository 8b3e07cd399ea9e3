import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// Guides 5, 6 and 7 against the real aws CLI and the emulator, a real Docker engine and a real
/// registry.
///
/// The earlier steps (network, security, rds, secrets) run once per emulator: each test starts
/// from a copy of their checkpoint. The tests give their resources names of their own (the
/// configuration's, or `crash-…`), so they share the emulator without seeing each other's.
final class ECRECSLambdaStepTests: XCTestCase {
  /// The emulator's ECR token: the registry's password.
  nonisolated(unsafe) private static var password: String?

  /// Values for the secrets step (the operator supplies them).
  static let suppliedSecrets = [
    "UNISYNC_CANVAS_API_TOKEN": "canvas-token-for-tests",
    "UNISYNC_COGNITO_USER_POOL_ID": "ap-northeast-2_tests",
    "UNISYNC_COGNITO_CLIENT_ID": "client-for-tests",
  ]

  /// Write actions of an uninterrupted run with new names: ecr 4 repositories + 4 × 2 pushes (12);
  /// ecs cluster, role + policy + inline policy, task role, 5 × (log group, retention, task
  /// definition) (the services and the database task), the database task's run, the namespace
  /// and the services' 4 Cloud Map services, ALB, target group, its attributes, listener, 4
  /// services (34); lambda role + 2 policies + inline policy, function (5). (The listener's
  /// forward rule, the services' revision updates and the function's code update find nothing
  /// to do.)
  static let writes = 12 + 34 + 5

  /// One uninterrupted run, while (as on AWS) a role cannot be given to a function for the first
  /// seconds after it was created (the aws shim's RUNBOOK_ROLE_PROPAGATION_SECONDS): the function
  /// is created once the role can be assumed, the log showing the retries. Then a rerun makes no
  /// call, and a run after `reset` finds everything.
  func testRunCreatesOneOfEverythingAndRerunsCreateNothing() async throws {
    let names = ResourceNames.guide
    let workspace = try await seededWorkspace(names, fresh: true)
    // Long enough that the function is still asked for inside it, however long the package
    // takes to build beside the role's policies on a busy machine (lambda runs beside ecr and ecs).
    workspace.environment["RUNBOOK_ROLE_PROPAGATION_SECONDS"] = "25"
    workspace.environment["RUNBOOK_ROLE_PROPAGATION_FILE"] =
      workspace.directory.appendingPathComponent("role-created").path
    let first = try await workspace.runLogged(["run", "ecr", "ecs", "lambda", "--yes"])
    workspace.environment["RUNBOOK_ROLE_PROPAGATION_SECONDS"] = nil
    XCTAssertEqual(first.run.status, 0, first.run.summary)
    let refused = first.calls.filter {
      $0["fault"] as? Bool == true
        && ($0["argv"] as? [String] ?? []).prefix(2) == ["lambda", "create-function"]
    }
    XCTAssertGreaterThanOrEqual(
      refused.count, 1, "the function should have been refused while the role was new")
    XCTAssertTrue(
      first.run.stdout.contains(
        "lambda/function  InvalidParameterValueException (can clear up by itself), attempt \(refused.count + 1)"
      ),
      first.run.stdout)
    let audit = try FileManager.default.contentsOfDirectory(
      atPath: workspace.stateDirectory + "/logs"
    )
    .map { try String(contentsOfFile: workspace.stateDirectory + "/logs/" + $0, encoding: .utf8) }
    .joined()
    XCTAssertTrue(
      audit.contains("[lambda/function] retry \(refused.count) after a transient failure"), audit)
    XCTAssertEqual(
      first.calls.filter {
        $0["exit"] as? Int == 0
          && ($0["argv"] as? [String] ?? []).prefix(2) == ["lambda", "create-function"]
      }.count, 1, "one function created")
    let exports = try workspace.checkpoint().exports
    let tag = try XCTUnwrap(exports["IMAGE_TAG"])
    // The default tag: the short commit of the build context when it is in a git work tree.
    let commit = try await ProcessRunner().run(
      Invocation(
        executable: "git",
        arguments: [
          "-C", repositoryRoot.appendingPathComponent("examples/services/api-gateway").path,
          "rev-parse", "--short", "HEAD",
        ]))
    if commit.succeeded {
      XCTAssertEqual(tag, commit.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines))
    } else {
      XCTAssertNotNil(tag.range(of: #"^[0-9]{14}$"#, options: .regularExpression), tag)
    }
    let inventory = try await inventory(workspace, names)
    XCTAssertEqual(inventory, names.expectedInventory(tag: tag))
    try await assertTaskDefinitions(workspace, names)
    assertServiceSettings(first.calls)
    // The target group holds the configuration's health check (local.json: the defaults).
    let groups = try await workspace.aws([
      "elbv2", "describe-target-groups", "--names", names.targetGroup,
    ])
    let group = try XCTUnwrap(
      ((groups as? [String: Any])?["TargetGroups"] as? [[String: Any]])?.first)
    XCTAssertEqual(
      [
        "HealthCheckIntervalSeconds", "HealthCheckTimeoutSeconds", "HealthyThresholdCount",
        "UnhealthyThresholdCount",
      ].map { group[$0] as? Int }, [15, 5, 2, 3], "\(group)")

    // Nothing left to do: no aws call, no docker call.
    let dockerLog = workspace.directory.appendingPathComponent("docker.log").path
    let rerun = try await workspace.run(
      ["run", "ecr", "ecs", "lambda", "--yes"],
      environment: [
        "RUNBOOK_AWS_LOG": workspace.directory.appendingPathComponent("rerun.log").path,
        "RUNBOOK_DOCKER_LOG": dockerLog,
      ])
    XCTAssertEqual(rerun.status, 0, rerun.summary)
    XCTAssertTrue(rerun.stdout.contains("nothing to do"), rerun.stdout)
    XCTAssertEqual(
      loggedAWSCalls(workspace.directory.appendingPathComponent("rerun.log").path).count, 0)
    XCTAssertEqual(loggedAWSCalls(dockerLog).count, 0)

    // The operator makes the tool forget ecs and lambda ('runbook reset'): a run finds every
    // resource. Nothing is created twice, no task definition revision is added, no service is
    // created again or changed, and the function's package, rebuilt in a new folder, has the same
    // SHA-256 as the code the function runs.
    for step in ["ecs", "lambda"] {
      let reset = try await workspace.run(["reset", step])
      XCTAssertEqual(reset.status, 0, reset.summary)
    }
    let again = try await workspace.runLogged(["run", "ecs", "lambda", "--yes"])
    XCTAssertEqual(again.run.status, 0, again.run.summary)
    let operations = again.calls.filter { $0["write"] as? Bool == true && $0["exit"] as? Int == 0 }
      .map { (($0["argv"] as? [String]) ?? []).prefix(2).joined(separator: " ") }
    let creating = operations.filter {
      [
        "create-load-balancer", "create-target-group", "create-listener", "modify-listener",
        "register-task-definition", "create-service", "update-service", "create-function",
        "update-function-code", "create-role", "create-log-group", "put-role-policy",
      ].contains(String($0.split(separator: " ").last ?? ""))
    }
    // (Every aws call goes through the logging shim: no other call can have made anything.)
    XCTAssertEqual(creating, [], "writes that created or changed something: \(operations)")
    XCTAssertEqual(try workspace.checkpoint().exports, exports)
  }

  /// Every write of the three steps (aws calls and docker pushes) is interrupted once, right after
  /// it returned; the run after each kill picks up where the last one stopped. (In `make test`
  /// 4 writes spread over the three steps: every one with `RUNBOOK_CRASH_ALL=1`, `make crash-all`.)
  func testKilledAfterEveryWriteResumesToExactlyOneOfEach() async throws {
    // Repositories of their own in the registry, which keeps images between test runs (a `latest`
    // that already is the image would not be pushed, and not be interrupted).
    let names = ResourceNames.other("crash" + UUID().uuidString.prefix(6).lowercased())
    let workspace = try await seededWorkspace(names)
    let chain = try await workspace.runKilledAfterEveryWrite(
      ["run", "ecr", "ecs", "lambda", "--yes"], limit: 60, sampled: (4, Self.writes))
    XCTAssertEqual(chain.last?.status, 0, chain.last?.summary ?? "no run finished")
    XCTAssertEqual(
      chain.kills, crashAll ? Self.writes : 4,
      "every sampled write should have been interrupted once")

    let exports = try workspace.checkpoint().exports
    let tag = try XCTUnwrap(exports["IMAGE_TAG"])
    let inventory = try await inventory(workspace, names)
    XCTAssertEqual(inventory, names.expectedInventory(tag: tag))
  }

  // MARK: - Helpers

  /// A workspace named for `names` whose checkpoint holds the finished earlier steps.
  ///
  /// The earlier steps run once per emulator: their checkpoint is kept in a folder named after
  /// the emulator (test processes may be separate, but one emulator serves one process at a
  /// time), and used again while the emulator still has their VPC.
  /// - Parameter fresh: start from an emulator that has nothing but the earlier steps' resources
  ///   (without it, resources of earlier tests with other names may be there too).
  /// A configuration edit that keeps only the services named: each one fewer is an image, a task
  /// definition, a service and their calls fewer, for tests about something else.
  static func only(_ services: Set<String>) -> (inout [String: Any]) -> Void {
    { config in
      config["services"] = (config["services"] as? [[String: Any]] ?? []).filter {
        services.contains($0["name"] as? String ?? "")
      }
    }
  }

  /// - Parameter configure: edits the configuration further (after `names`).
  func seededWorkspace(
    _ names: ResourceNames, fresh: Bool = false, name: String = #function,
    configure: (inout [String: Any]) -> Void = { _ in }
  ) async throws -> Workspace {
    let registry = try DockerEnvironment.registry()
    let endpoint = try Emulator.endpoint()
    let seed = FileManager.default.temporaryDirectory.appendingPathComponent(
      "runbook-test-seed-ecr-ecs-lambda-" + endpoint.filter { $0.isLetter || $0.isNumber }
    ).path
    let seeded = try? JSONDecoder().decode(
      Checkpoint.self, from: Data(contentsOf: URL(fileURLWithPath: seed + "/state.json")))
    var current = false
    if !fresh, let vpc = seeded?.exports["VPC_ID"] {
      current = (try? await awsJSON(endpoint, ["ec2", "describe-vpcs", "--vpc-ids", vpc])) != nil
    }
    if !current {
      try Emulator.reset()
      let earlier = try Workspace(name: "seed")
      let run = try await earlier.run(
        ["run", "network", "security", "rds", "secrets", "--yes", "--jobs", "8"],
        environment: Self.suppliedSecrets)
      XCTAssertEqual(run.status, 0, run.summary)
      try? FileManager.default.removeItem(atPath: seed)
      try FileManager.default.createDirectory(atPath: seed, withIntermediateDirectories: true)
      for file in ["state.json", "journal.jsonl"] {
        try FileManager.default.copyItem(
          atPath: earlier.stateDirectory + "/" + file, toPath: seed + "/" + file)
      }
    }
    let workspace = try Workspace(name: name) { config in
      config["registry"] = registry
      names.apply(to: &config)
      configure(&config)
    }
    // Registry logins of this workspace stay in it.
    workspace.environment["DOCKER_CONFIG"] =
      workspace.directory.appendingPathComponent("docker-config").path
    try FileManager.default.createDirectory(
      atPath: workspace.stateDirectory, withIntermediateDirectories: true)
    for file in ["state.json", "journal.jsonl"] {
      try FileManager.default.copyItem(
        atPath: seed + "/" + file, toPath: workspace.stateDirectory + "/" + file)
    }
    return workspace
  }

  func registryPassword(_ workspace: Workspace) async throws -> String {
    if let password = Self.password { return password }
    let output = try await ProcessRunner().run(
      Invocation(
        executable: "aws",
        arguments: [
          "ecr", "get-login-password", "--region", "ap-northeast-2", "--endpoint-url",
          workspace.endpoint,
        ],
        environment: [
          "PATH": Workspace.shimmedPath, "AWS_ACCESS_KEY_ID": "testing",
          "AWS_SECRET_ACCESS_KEY": "testing",
        ]))
    XCTAssertTrue(output.succeeded, output.stderrText)
    let password = output.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
    Self.password = password
    return password
  }

  /// The inventory lines; checks on the way that every export of the three steps names the one
  /// resource of its kind, and that each image digest is the registry's digest of both tags.
  func inventory(
    _ workspace: Workspace, _ names: ResourceNames, file: StaticString = #filePath,
    line: UInt = #line
  ) async throws -> [String: [String]] {
    let exports = try workspace.checkpoint().exports
    let password = try await registryPassword(workspace)
    let (lines, found) = try await names.inventory(
      endpoint: workspace.endpoint, exports: exports, registryPassword: password)
    let deployment = try Deployment.load(from: workspace.configPath)
    let steps: [any GuideStep] = [ECRStep(), ECSStep(), LambdaStep()]
    var expected = Set<String>()
    for step in steps { expected.formUnion(step.producedExports(for: deployment)) }
    XCTAssertEqual(
      Set(exports.keys).intersection(expected), expected, "missing exports", file: file, line: line)
    for (export, value) in found {
      XCTAssertEqual(exports[export], value, export, file: file, line: line)
    }
    XCTAssertEqual(
      found.count, 9, "exports checked against the resources: \(found.keys.sorted())", file: file,
      line: line)
    let tag = try XCTUnwrap(exports["IMAGE_TAG"], file: file, line: line)
    for service in ResourceNames.services {
      let suffix = service.uppercased().replacingOccurrences(of: "-", with: "_")
      XCTAssertEqual(
        exports["REPO_URI_\(suffix)"],
        "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com/\(names.prefix)/\(service)",
        file: file, line: line)
      for reference in [tag, "latest"] {
        let manifest = try DockerEnvironment.get(
          "/v2/\(names.prefix)/\(service)/manifests/\(reference)", password: password,
          accept: "application/vnd.docker.distribution.manifest.v2+json")
        XCTAssertEqual(
          manifest.headers["docker-content-digest"], exports["IMAGE_DIGEST_\(suffix)"],
          "\(service):\(reference)", file: file, line: line)
      }
      XCTAssertEqual(
        exports["TASK_DEF_\(suffix)"],
        "arn:aws:ecs:ap-northeast-2:123456789012:task-definition/\(names.prefix)-\(service):1",
        file: file, line: line)
    }
    return lines
  }

  /// What the emulator does not keep, checked in the create-service calls: every service has the
  /// circuit breaker with rollback; only the gateway is behind the target group, with a grace period.
  func assertServiceSettings(
    _ calls: [[String: Any]], file: StaticString = #filePath, line: UInt = #line
  ) {
    let creates = calls.compactMap { $0["argv"] as? [String] }.filter {
      $0.starts(with: ["ecs", "create-service"])
    }
    XCTAssertEqual(creates.count, 4, file: file, line: line)
    for argv in creates {
      func value(_ option: String) -> String? {
        argv.firstIndex(of: option).flatMap { $0 + 1 < argv.count ? argv[$0 + 1] : nil }
      }
      let name = value("--service-name") ?? "?"
      let configuration = value("--deployment-configuration").flatMap {
        try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
      }
      XCTAssertEqual(
        configuration?["deploymentCircuitBreaker"] as? [String: Bool],
        ["enable": true, "rollback": true], name,
        file: file, line: line)
      XCTAssertEqual(
        value("--health-check-grace-period-seconds"), name == "api-gateway" ? "180" : nil, name,
        file: file, line: line)
      XCTAssertEqual(
        value("--load-balancers") != nil, name == "api-gateway", name, file: file, line: line)
    }
  }

  /// The task definitions run the pushed images with the unique tag, read their secrets from the
  /// ARNs the earlier steps exported, and log to their log groups; the execution role may read them.
  func assertTaskDefinitions(_ workspace: Workspace, _ names: ResourceNames) async throws {
    let exports = try workspace.checkpoint().exports
    let registry = try DockerEnvironment.registry()
    let endpoint = workspace.endpoint
    func describe(_ service: String) async throws -> [String: Any] {
      try await awsJSON(
        endpoint,
        ["ecs", "describe-task-definition", "--task-definition", "\(names.prefix)-\(service)"])
    }
    async let gateway = describe("api-gateway")
    async let course = describe("course-service")
    async let schedule = describe("schedule-service")
    async let user = describe("user-service")
    let described = [
      "api-gateway": try await gateway, "course-service": try await course,
      "schedule-service": try await schedule,
      "user-service": try await user,
    ]
    for service in ResourceNames.services {
      let described = described[service] ?? [:]
      let definition = try XCTUnwrap(described["taskDefinition"] as? [String: Any])
      XCTAssertEqual(definition["executionRoleArn"] as? String, exports["EXECUTION_ROLE_ARN"])
      XCTAssertEqual(definition["taskRoleArn"] as? String, exports["TASK_ROLE_ARN"])
      XCTAssertEqual(definition["networkMode"] as? String, "awsvpc")
      XCTAssertEqual(definition["requiresCompatibilities"] as? [String], ["FARGATE"])
      let container = try XCTUnwrap((definition["containerDefinitions"] as? [[String: Any]])?.first)
      XCTAssertEqual(
        container["image"] as? String,
        "\(registry)/\(names.prefix)/\(service):\(exports["IMAGE_TAG"] ?? "?")")
      var secrets: [String: String] = [:]
      for secret in container["secrets"] as? [[String: Any]] ?? [] {
        secrets[secret["name"] as? String ?? "?"] = secret["valueFrom"] as? String
      }
      var environment: [String: String] = [:]
      for variable in container["environment"] as? [[String: Any]] ?? [] {
        environment[variable["name"] as? String ?? "?"] = variable["value"] as? String
      }
      XCTAssertEqual(environment["SPRING_PROFILES_ACTIVE"], "prod")
      if service == "api-gateway" {
        let cognito = try XCTUnwrap(exports["COGNITO_SECRET_ARN"])
        XCTAssertEqual(
          secrets,
          [
            "COGNITO_USER_POOL_ID": cognito + ":userPoolId::",
            "COGNITO_CLIENT_ID": cognito + ":clientId::",
          ])
        XCTAssertEqual(environment["USER_SERVICE_URL"], "http://unisync-user-service:8081")
      } else {
        // The service's own database user and its secret, not the rotating master secret.
        let suffix = service.uppercased().replacingOccurrences(of: "-", with: "_")
        XCTAssertEqual(
          secrets,
          [
            "SPRING_DATASOURCE_PASSWORD": try XCTUnwrap(
              exports["DB_PASSWORD_SECRET_ARN_\(suffix)"]),
            "ENCRYPTION_KEY": try XCTUnwrap(exports["ENCRYPTION_KEY_SECRET_ARN"]),
          ])
        XCTAssertEqual(
          environment["SPRING_DATASOURCE_USERNAME"],
          service.replacingOccurrences(of: "-", with: "_"))
        let database = service.replacingOccurrences(of: "-service", with: "_db")
        XCTAssertEqual(environment["RDS_ENDPOINT"], exports["RDS_ENDPOINT"])
        XCTAssertEqual(environment["DB_NAME"], database)
        XCTAssertEqual(
          environment["SPRING_DATASOURCE_URL"],
          "jdbc:mysql://\(exports["RDS_ENDPOINT"] ?? "?"):3306/\(database)")
      }
      let logs = (container["logConfiguration"] as? [String: Any])?["options"] as? [String: String]
      XCTAssertEqual(logs?["awslogs-group"], "/ecs/\(names.prefix)-\(service)")
    }
    let policy = try await awsJSON(
      workspace.endpoint,
      [
        "iam", "get-role-policy", "--role-name", names.executionRole, "--policy-name",
        "SecretsManagerAccess",
      ])
    let document = policy["PolicyDocument"] as? [String: Any]
    let statement = (document?["Statement"] as? [[String: Any]])?.first
    XCTAssertEqual(
      statement?["Resource"] as? [String],
      [
        "arn:aws:secretsmanager:ap-northeast-2:123456789012:secret:unisync/*",
        try XCTUnwrap(exports["RDS_SECRET_ARN"]),
      ])
  }
}
