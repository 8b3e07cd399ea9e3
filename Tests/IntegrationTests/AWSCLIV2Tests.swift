import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// The aws CLI most operators run is v2; every other test runs v1 (pip's awscli). These tests run
/// the tool with Debian 12's own awscli package (aws-cli/2.9.19, `apt-get install awscli`;
/// `.ci/run` installs it), which `make test` names in RUNBOOK_AWS_V2 (the Makefile's AWS_V2,
/// default /usr/bin/aws). Without it they fail, never skip.
///
/// The tool's runs get v2 from the aws shim (RUNBOOK_REAL_AWS), started afresh for every call
/// (the fork server has v1 loaded); the tests' own look at the emulator keeps v1. The whole
/// runbook runs as in ``DayTwoTests`` (the same checks of verify, update, destroy and the
/// secrets), with fewer interruptions and no throttling (which the shim injects before any aws
/// runs): together they make every aws operation the v1 suite sees the tool make, but the S3
/// state's writes, which aws-cli/2.9.19 cannot make and the tool refuses before the first one
/// (docs/reliability.md, "Two aws CLIs").
final class AWSCLIV2Tests: XCTestCase {
  /// The aws CLI v2 `make test` names; throws when it is missing or is not v2.
  static func path() throws -> String {
    let path = ProcessInfo.processInfo.environment["RUNBOOK_AWS_V2"] ?? "/usr/bin/aws"
    guard FileManager.default.isExecutableFile(atPath: path) else {
      throw HarnessError.missing(
        "no aws CLI v2 at \(path): apt-get install --no-install-recommends awscli (Debian 12: aws-cli/2.9.19; .ci/run installs it), or make test AWS_V2=/path/to/aws"
      )
    }
    return path
  }

  /// What `aws --version` of the v2 CLI says (`aws-cli/2.9.19 Python/3.11.2 …`); throws unless v2.
  static func version() async throws -> String {
    let output = try await ProcessRunner().run(
      Invocation(executable: try path(), arguments: ["--version"]))
    let text = (output.stdoutText + output.stderrText).trimmingCharacters(
      in: .whitespacesAndNewlines)
    guard output.succeeded, text.hasPrefix("aws-cli/2.") else {
      throw HarnessError.missing("\(try path()) is not the aws CLI v2: '--version' said '\(text)'")
    }
    return text
  }

  /// Makes every run of the tool in `workspace` use the aws CLI v2: through the fork server
  /// `make test` starts for it (RUNBOOK_AWS_V2_FORK_SOCKET), else started afresh for every call.
  static func use(in workspace: Workspace) throws {
    workspace.environment["RUNBOOK_REAL_AWS"] = try path()
    workspace.environment["RUNBOOK_AWS_FORK_SOCKET"] =
      ProcessInfo.processInfo.environment["RUNBOOK_AWS_V2_FORK_SOCKET"] ?? ""
  }

  /// The aws operations (`ec2 create-vpc`) of the calls the shim logged in every `*.log` of the
  /// workspace, with how many calls made each (doctor's probes, which send nothing, left out).
  static func operations(in workspace: Workspace) -> [String: Int] {
    var operations: [String: Int] = [:]
    let files =
      (try? FileManager.default.contentsOfDirectory(atPath: workspace.directory.path)) ?? []
    for file in files where file.hasSuffix(".log") && !file.hasPrefix("docker") {
      for call in loggedAWSCalls(workspace.directory.appendingPathComponent(file).path) {
        let argv = call["argv"] as? [String] ?? []
        if argv.contains("--generate-cli-skeleton") { continue }
        operations[operation(argv), default: 0] += 1
      }
    }
    return operations
  }

  /// The service and operation words of an aws argv (`ec2 create-vpc`; "" for `--version`),
  /// global options and their values left out, as the aws shim reads them.
  static func operation(_ argv: [String]) -> String {
    let valued: Set = [
      "--endpoint-url", "--output", "--query", "--profile", "--region", "--color", "--ca-bundle",
      "--cli-read-timeout", "--cli-connect-timeout", "--cli-binary-format",
    ]
    var words: [String] = []
    var index = 0
    while index < argv.count, words.count < 2 {
      let argument = argv[index]
      if argument.hasPrefix("--") {
        if valued.contains(argument) { index += 1 }
      } else {
        words.append(argument)
      }
      index += 1
    }
    return words.joined(separator: " ")
  }

  /// The whole runbook on the aws CLI v2, with the same checks as ``DayTwoTests``: a deployment
  /// interrupted in its waits and after chosen writes (the adopted VPC, the role that existed,
  /// the hostile configuration values), one of everything and a rerun that writes nothing, a new
  /// secret value; verify (with v2's `aws logs tail`), update (a failing rollout and a rollback
  /// included), doctor (every check passes), destroy interrupted at sampled deletes, no secret
  /// anywhere, and the secrets deployed again (restored).
  func testTheWholeRunbookWithTheAWSCLIv2() async throws {
    let version = try await Self.version()
    let registry = try DockerEnvironment.registry()
    try Emulator.reset()
    let unique = UUID().uuidString.prefix(8).lowercased()
    var supplied = [
      "UNISYNC_CANVAS_API_TOKEN": "canvas-token-\(unique)-v2Qp",
      "UNISYNC_COGNITO_USER_POOL_ID": "ap-northeast-2_pool\(unique)",
      "UNISYNC_COGNITO_CLIENT_ID": "client-\(unique)-v2Zr",
    ]
    let hostile = HostileValues()
    let workspace = try Workspace { config in
      config["registry"] = registry
      config["operations"] = [
        "healthCheckTimeoutSeconds": 3, "healthCheckIntervalSeconds": 1, "logLines": 5,
        "followIntervalSeconds": 1, "deploymentPollSeconds": 1, "dependencyRetrySeconds": 20,
        "pausePercent": Workspace.testPausePercent,
      ]
      hostile.apply(to: &config)
    }
    try Self.use(in: workspace)
    // An operator's `cli_auto_prompt = on`: v2 would ask for every call, and fail without a
    // terminal; the tool turns it off for each call.
    workspace.environment["AWS_CLI_AUTO_PROMPT"] = "on"
    workspace.environment["DOCKER_CONFIG"] =
      workspace.directory.appendingPathComponent("docker-config").path
    workspace.environment["RUNBOOK_AWS_LOG"] =
      workspace.directory.appendingPathComponent("aws.log").path
    workspace.environment["RUNBOOK_DOCKER_LOG"] =
      workspace.directory.appendingPathComponent("docker.log").path
    _ = try workspace.privateTemporaryDirectory()  // scanned for secrets at the end
    XCTAssertTrue(workspace.usesAWSCLIv2)

    // Made by hand: the VPC taken over with --adopt, and the Lambda role that existed.
    let vpc = try await workspace.aws(
      [
        "ec2", "create-vpc", "--cidr-block", "10.0.0.0/16", "--tag-specifications",
        #"[{"ResourceType":"vpc","Tags":[{"Key":"Name","Value":"unisync-vpc"}]}]"#,
      ])
    let adoptedVPC = ((vpc as? [String: Any])?["Vpc"] as? [String: Any])?["VpcId"] as? String ?? ""
    _ = try await workspace.aws(
      [
        "iam", "create-role", "--role-name", DayTwoTests.lambdaRole,
        "--assume-role-policy-document",
        #"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#,
      ])

    var clock = Date()
    func lap(_ part: String) {
      report("aws CLI v2: \(part) took \(Int(Date().timeIntervalSince(clock))) s")
      clock = Date()
    }
    // The checks DayTwoTests makes, on this workspace.
    let day = DayTwoTests(name: "AWSCLIV2Tests", testClosure: { _ in })

    // The deployment, killed in the NAT gateway and DB instance waits, right after the role
    // that existed, and right after the writes whose resumed runs look their work up with reads
    // the other kills do not make (a security group rule, a managed policy attached to a role, a
    // log group, the target group's attributes, the listener, the function): each resumed run
    // finds what the killed one was making. (In the order a run with --jobs 1 reaches them.)
    let arguments = ["run"] + DayTwoTests.steps + ["--adopt", "--yes"]
    let chain = try await workspace.runInterrupted(
      arguments, at: [],
      waits: [
        DayTwoTests.natWait,
        WaitKill(name: "security/rule", pattern: "ec2 authorize-security-group-ingress "),
        DayTwoTests.rdsWait,
        WaitKill(name: "ecs/execution-role policy", pattern: "iam attach-role-policy "),
        WaitKill(name: "ecs/log-group", pattern: "logs create-log-group "),
        WaitKill(
          name: "ecs/target-group-attributes", pattern: "elbv2 modify-target-group-attributes "),
        WaitKill(name: "ecs/listener", pattern: "elbv2 create-listener "),
        DayTwoTests.existingRole,
        WaitKill(name: "lambda/function", pattern: "lambda create-function "),
      ],
      environment: supplied)
    XCTAssertEqual(chain.finished?.status, 0, chain.finished?.summary ?? "no run finished")
    guard chain.finished?.status == 0 else {
      throw HarnessError.missing("the deployment did not finish with aws CLI v2")
    }
    XCTAssertEqual(chain.waitsMissed, [], "kill points never reached")
    XCTAssertEqual(chain.interruptions.count, 9, "\(chain.interruptions)")
    report(
      "aws CLI v2 chain: \(chain.interruptions.count) interruptions, \(chain.writes) writes: "
        + chain.interruptions.map(\.description).joined(separator: ", "))
    let exports = try workspace.checkpoint().exports
    let tag = try XCTUnwrap(exports["IMAGE_TAG"])
    let password = try await emulatorRegistryPassword(workspace.endpoint)
    let inventory = try await wholeInventory(workspace, registryPassword: password)
    XCTAssertEqual(inventory, expectedWholeInventory(tag: tag))
    let expected = try expectedExports(workspace.configPath, steps: DayTwoTests.steps)
    XCTAssertEqual(expected.subtracting(exports.keys), [], "missing exports")
    XCTAssertEqual(exports.filter { $0.value.isEmpty }.keys.sorted(), [], "empty exports")
    try await day.checkHostileValuesPassedLiterally(
      workspace, hostile, calls: loggedAWSCalls(workspace.environment["RUNBOOK_AWS_LOG"]!))
    let rerunLog = workspace.directory.appendingPathComponent("rerun-aws.log").path
    let rerun = try await workspace.run(
      arguments, environment: supplied.merging(["RUNBOOK_AWS_LOG": rerunLog]) { $1 })
    XCTAssertEqual(rerun.status, 0, rerun.summary)
    XCTAssertEqual(
      loggedAWSCalls(rerunLog).filter { $0["write"] as? Bool == true }.count, 0, "a rerun wrote")
    // A new value for a secret the operator supplies: put-secret-value, byte for byte.
    supplied["UNISYNC_CANVAS_API_TOKEN"] = "canvas-token-\(unique)-v2Qp-2"
    let overwrite = try await workspace.run(
      ["run", "secrets", "--yes", "--overwrite-secrets"], environment: supplied)
    XCTAssertEqual(overwrite.status, 0, overwrite.summary)
    let token = try await workspace.aws([
      "secretsmanager", "get-secret-value", "--secret-id", "unisync/canvas-api-token",
    ])
    XCTAssertEqual(
      (token as? [String: Any])?["SecretString"] as? String, supplied["UNISYNC_CANVAS_API_TOKEN"])
    lap("the interrupted deployment, its inventory, the rerun and new secret values")

    try await day.checkVerify(workspace)
    lap("verify")
    try await day.checkUpdate(workspace)
    lap("update")

    // doctor: v2 is no broken CLI (the state is in a folder: S3 state's needs are only named).
    let doctor = try await workspace.run(["doctor"])
    XCTAssertEqual(doctor.status, 0, doctor.summary)
    XCTAssertTrue(doctor.stdout.contains("all checks passed"), doctor.stdout)
    let short = version.split(separator: " ").first.map(String.init) ?? version
    XCTAssertTrue(doctor.stdout.contains("OK    aws CLI          \(short) (v2)"), doctor.stdout)
    XCTAssertTrue(
      doctor.stdout.contains("OK    aws CLI options  \(short) knows every option the steps use"),
      doctor.stdout)

    let secrets = try await day.secretValues(workspace, supplied: supplied)
    try await day.checkDestroy(workspace, adoptedVPC: adoptedVPC)
    lap("the interrupted destroy")
    try await day.checkNoSecretAnywhere(workspace, secrets: secrets)

    // The secrets again on the same state directory: destroy scheduled them for deletion, and
    // the run restores them (restore-secret) and uses them as they are.
    let again = try await workspace.run(["run", "secrets", "--yes"], environment: supplied)
    XCTAssertEqual(again.status, 0, again.summary)
    for name in ["unisync/encryption-key", "unisync/canvas-api-token", "unisync/cognito-config"] {
      let described = try await workspace.aws([
        "secretsmanager", "describe-secret", "--secret-id", name,
      ])
      XCTAssertNil(
        (described as? [String: Any])?["DeletedDate"], "\(name) is still scheduled for deletion")
    }

    let operations = Self.operations(in: workspace)
    report(
      "aws CLI v2: \(operations.values.reduce(0, +)) calls of \(operations.count) operations: "
        + operations.keys.sorted().joined(separator: ", "))
    XCTAssertNotNil(operations["logs tail"], "verify reads the logs with v2's logs tail")
  }

  /// S3 state with aws-cli/2.9.19, which has no conditional requests: `run` stops before its
  /// first write (exit 2, one line naming the releases that have them), nothing is in the bucket
  /// and nothing local is made; the probes are no writes for the shim either. doctor fails the
  /// check with S3 state, and `unlock` stops before it is asked anything.
  func testS3StateStopsBeforeItsFirstWriteAndDoctorSaysWhy() async throws {
    let version = try await Self.version()
    guard version.hasPrefix("aws-cli/2.9.") else {
      throw HarnessError.missing(
        "this test needs an aws CLI v2 without S3's conditional requests (Debian 12's 2.9.19), not \(version)"
      )
    }
    try Emulator.reset()
    let workspace = try Workspace { config in
      config["sqs"] = [
        "queues": ["events-queue"],
        "deadLetter": [
          "queue": "events-queue-dlq", "source": "events-queue", "maxReceiveCount": 5,
        ],
      ]
    }
    try Self.use(in: workspace)
    _ = try await workspace.aws([
      "s3api", "create-bucket", "--bucket", "runbook-state", "--create-bucket-configuration",
      "LocationConstraint=ap-northeast-2",
    ])
    func objects() async throws -> [String] {
      let listed = try await workspace.aws([
        "s3api", "list-objects-v2", "--bucket", "runbook-state",
      ])
      return ((listed as? [String: Any])?["Contents"] as? [[String: Any]] ?? []).compactMap {
        $0["Key"] as? String
      }
    }
    let state = ["--state", "s3://runbook-state"]

    let (run, calls) = try await workspace.runLogged(state + ["run", "sqs", "--yes"])
    XCTAssertEqual(run.status, 2, run.summary)
    XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, run.stderr)
    let short = version.split(separator: " ").first.map(String.init) ?? version
    XCTAssertEqual(
      run.stderr,
      "error: s3://runbook-state/runbook/unisync: S3 state is written with conditional requests, and this aws CLI (\(short)) has no s3api put-object --if-match, --if-none-match and s3api delete-object --if-match: install aws CLI v2 2.22.5 or later (or v1 1.36.10 or later), or keep the state in a folder (--state-dir); nothing was written\n"
    )
    XCTAssertFalse(run.stderr.contains("Unknown options"), run.stderr)
    let objectsAfterRun = try await objects()
    XCTAssertEqual(objectsAfterRun, [], "nothing in the bucket")
    XCTAssertFalse(FileManager.default.fileExists(atPath: workspace.stateDirectory))
    let probes = calls.filter {
      ($0["argv"] as? [String] ?? []).contains("--generate-cli-skeleton")
    }
    XCTAssertEqual(probes.count, 2, "\(calls)")
    XCTAssertEqual(calls.filter { $0["write"] as? Bool == true }.count, 0, "\(calls)")
    XCTAssertFalse(
      calls.contains { ($0["argv"] as? [String] ?? []).contains("sqs") }, "no queue was made")

    // doctor: the check fails with S3 state and says what to install.
    let doctor = try await workspace.run(state + ["doctor"])
    XCTAssertEqual(doctor.status, 1, doctor.summary)
    XCTAssertTrue(
      doctor.stdout.contains(
        "FAIL  aws CLI options  \(short) has no s3api put-object --if-match, --if-none-match and s3api delete-object --if-match, needed by S3 state (s3://runbook-state/runbook/unisync)"
      ), doctor.stdout)
    XCTAssertTrue(
      doctor.stdout.contains("fix: install aws CLI v2 2.22.5 or later (or v1 1.36.10 or later)"),
      doctor.stdout)

    // unlock: a lock left by a run that died stays; the operator is told why before anything.
    let body = workspace.directory.appendingPathComponent("lock.json").path
    try Data(
      #"{"command":"runbook run","host":"elsewhere","pid":1,"startedAt":"2026-01-01T00:00:00.000"}"#
        .utf8
    ).write(to: URL(fileURLWithPath: body))
    _ = try await workspace.aws([
      "s3api", "put-object", "--bucket", "runbook-state", "--key", "runbook/unisync/lock", "--body",
      body,
    ])
    let unlock = try await workspace.run(state + ["unlock", "--yes", "--force"])
    XCTAssertEqual(unlock.status, 2, unlock.summary)
    XCTAssertEqual(unlock.stdout, "", "nothing is shown or asked before the refusal")
    XCTAssertTrue(unlock.stderr.contains("install aws CLI v2 2.22.5 or later"), unlock.stderr)
    let objectsAfterUnlock = try await objects()
    XCTAssertEqual(objectsAfterUnlock, ["runbook/unisync/lock"])
  }

  /// The fork server `make test` starts has v1 loaded: a call for another aws (this v2) fails
  /// loudly instead of running v1 in its stead.
  func testTheForkServerRefusesACallForAnotherAWS() async throws {
    let socket = try XCTUnwrap(
      ProcessInfo.processInfo.environment["RUNBOOK_AWS_FORK_SOCKET"].flatMap {
        $0.isEmpty ? nil : $0
      }, "make test starts the fork server (RUNBOOK_AWS_FORK=0 does not)")
    let output = try await ProcessRunner().run(
      Invocation(
        executable: "aws",
        arguments: [
          "sts", "get-caller-identity", "--region", "ap-northeast-2", "--endpoint-url",
          try Emulator.endpoint(),
        ],
        environment: [
          "PATH": Workspace.shimmedPath, "RUNBOOK_REAL_AWS": try Self.path(),
          "RUNBOOK_AWS_FORK_SOCKET": socket, "AWS_ACCESS_KEY_ID": "testing",
          "AWS_SECRET_ACCESS_KEY": "testing",
        ]))
    XCTAssertEqual(output.termination, .exited(127), output.stdoutText + output.stderrText)
    let v2 = try Self.path()
    XCTAssertTrue(
      output.stderrText.contains("aws fork server: it runs ")
        && output.stderrText.contains("not \(v2)"), output.stderrText)
  }

  /// scripts/local-aws.sh picks the tests' aws CLI v1 from PATH only when it is v1: Debian's v2
  /// (/usr/bin/aws) is a Python script too.
  func testTheEmulatorScriptTakesNoV2ForTheTestsV1() async throws {
    let environment = ProcessInfo.processInfo.environment
    let v1 = try XCTUnwrap(environment["RUNBOOK_REAL_AWS"], "make test sets RUNBOOK_REAL_AWS")
    let testDirectory = try XCTUnwrap(environment["RUNBOOK_TEST_DIR"])
    let moto = try String(contentsOfFile: testDirectory + "/moto.path", encoding: .utf8)
      .trimmingCharacters(in: .whitespacesAndNewlines)
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent(
      "runbook-v2-path-\(UUID().uuidString.prefix(8))")
    defer { try? FileManager.default.removeItem(at: folder) }
    let files = FileManager.default
    // PATH: the v2 CLI and moto_server; the virtualenv the script falls back on: v1 and moto.
    for (directory, aws) in [("bin", try Self.path()), ("venv/bin", v1)] {
      let path = folder.appendingPathComponent(directory).path
      try files.createDirectory(atPath: path, withIntermediateDirectories: true)
      try files.createSymbolicLink(atPath: path + "/aws", withDestinationPath: aws)
      try files.createSymbolicLink(atPath: path + "/moto_server", withDestinationPath: moto)
    }
    let output = try await ProcessRunner().run(
      Invocation(
        executable: repositoryRoot.appendingPathComponent("scripts/local-aws.sh").path,
        arguments: ["tools"],
        environment: [
          "PATH": folder.appendingPathComponent("bin").path + ":/usr/bin:/bin",
          "RUNBOOK_TEST_DIR": folder.appendingPathComponent("state").path,
          "RUNBOOK_VENV_DIR": folder.appendingPathComponent("venv").path,
        ]))
    XCTAssertTrue(output.succeeded, output.stderrText)
    XCTAssertEqual(
      output.stdoutText.split(separator: "\n").first.map(String.init),
      "aws=" + folder.appendingPathComponent("venv/bin/aws").path, output.stderrText)
    XCTAssertTrue(output.stderrText.contains("is not the aws CLI v1"), output.stderrText)
  }
}

extension Workspace {
  /// Whether the tool's runs here use the aws CLI v2 (``AWSCLIV2Tests/use(in:)``).
  var usesAWSCLIv2: Bool {
    environment["RUNBOOK_REAL_AWS"] != nil
      && environment["RUNBOOK_REAL_AWS"] == (try? AWSCLIV2Tests.path())
  }
}
