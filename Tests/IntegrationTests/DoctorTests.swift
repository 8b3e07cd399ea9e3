import Foundation
import RunbookAWS
import RunbookCLI
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook
import XCTest

/// `runbook doctor`: each check by name, OK / WARN / FAIL, exit 1 when one fails.
final class DoctorTests: XCTestCase {
  override func setUp() async throws { try Emulator.reset() }

  /// The engine and registry `make test` started, for the docker check.
  private var dockerEnvironment: [String: String] {
    get throws {
      _ = try DockerEnvironment.registry()
      let variables = ProcessInfo.processInfo.environment
      return [
        "DOCKER_HOST": variables["DOCKER_HOST"] ?? "",
        "DOCKER_CONFIG": variables["DOCKER_CONFIG"] ?? "",
      ]
    }
  }

  /// The doctor's line for the check `name`, e.g. `FAIL  docker           not found on PATH`.
  private func line(_ name: String, in output: String) -> String? {
    output.split(separator: "\n").map(String.init).first { line in
      line.count > 6 && line.dropFirst(6).hasPrefix(name + " ")
    }
  }

  func testEveryCheckPassesWithToolsCredentialsAndAnEmptyStateDirectory() async throws {
    let workspace = try Workspace()
    let doctor = try await workspace.run(["doctor"], environment: try dockerEnvironment)
    XCTAssertEqual(doctor.status, 0, doctor.summary)
    for check in [
      "aws CLI", "docker", "zip", "configuration", "credentials", "checkpoint", "build contexts",
      "state directory",
    ] {
      let found = line(check, in: doctor.stdout)
      XCTAssertTrue(
        found?.hasPrefix("OK ") == true, "\(check): \(found ?? "missing")\n\(doctor.stdout)")
    }
    XCTAssertTrue(
      line("credentials", in: doctor.stdout)?.contains("account 123456789012") == true,
      doctor.stdout)
    XCTAssertTrue(doctor.stdout.contains("all checks passed"), doctor.stdout)
    // The emulator ignores --dry-run: doctor says so and removes the VPC it made.
    let vpcs = try await workspace.aws([
      "ec2", "describe-vpcs", "--filters", "Name=is-default,Values=false",
    ])
    XCTAssertEqual(
      ((vpcs as? [String: Any])?["Vpcs"] as? [Any])?.count, 0, "doctor left a VPC behind")
  }

  func testNoDockerOnPathFailsTheDockerCheck() async throws {
    let workspace = try Workspace()
    let path = try pathWithout("docker", in: workspace.directory)
    let doctor = try await workspace.run(["doctor"], environment: ["PATH": path])
    XCTAssertEqual(doctor.status, 1, doctor.summary)
    let docker = line("docker", in: doctor.stdout)
    XCTAssertTrue(
      docker?.hasPrefix("FAIL ") == true && docker?.contains("not found on PATH") == true,
      doctor.stdout)
    XCTAssertTrue(doctor.stdout.contains("fix: install Docker"), doctor.stdout)
    XCTAssertTrue(line("aws CLI", in: doctor.stdout)?.hasPrefix("OK ") == true, doctor.stdout)
    XCTAssertTrue(doctor.stdout.contains("1 check(s) failed"), doctor.stdout)
  }

  /// Doctor's FAIL, and `run` refusing the same before its first write.
  func testADockerDaemonThatDoesNotAnswerFailsDoctorAndStopsRunBeforeAnyWrite() async throws {
    let workspace = try Workspace()
    let gone = [
      "DOCKER_HOST": "unix://" + workspace.directory.appendingPathComponent("no-docker.sock").path
    ]
    let doctor = try await workspace.run(["doctor"], environment: gone)
    XCTAssertEqual(doctor.status, 1, doctor.summary)
    XCTAssertTrue(
      line("docker", in: doctor.stdout)?.contains(
        "FAIL  docker           the Docker daemon does not answer") == true, doctor.stdout)

    let log = workspace.directory.appendingPathComponent("aws.log").path
    let run = try await workspace.run(
      ["run", "ecr", "--yes"], environment: gone.merging(["RUNBOOK_AWS_LOG": log]) { $1 })
    XCTAssertEqual(run.status, 2, run.summary)
    XCTAssertTrue(run.stderr.contains("the Docker daemon does not answer"), run.stderr)
    XCTAssertEqual(run.stderr.split(separator: "\n").count, 1, run.stderr)
    XCTAssertEqual(
      loggedAWSCalls(log).filter { $0["write"] as? Bool == true }.count, 0, "nothing was created")
    XCTAssertNil(workspace.stateBytes, "no checkpoint was written")
  }

  /// Runs `doctor` with the recording fakes of aws and docker (Tests/Fixtures/bin-fake) first on
  /// PATH, answering as `answers` say (plus `aws --version` and the Docker engine's version);
  /// every call the fakes were not told to expect fails the test.
  private func fakeDoctor(_ workspace: Workspace, _ answers: [String: Any]) async throws
    -> (run: ToolRun, calls: [[String: Any]])
  {
    let responses = workspace.directory.appendingPathComponent("responses.json")
    let log = workspace.directory.appendingPathComponent("fake-\(UUID().uuidString.prefix(8)).log")
    var answers = answers
    answers["--version"] = [
      "stdout": "aws-cli/1.45.11 Python/3.11.7 Linux/6.1 botocore/1.43.11\n"
    ]
    answers["docker version"] = ["stdout": "27.5.1\n"]
    // The `aws CLI options` check's probes (`--generate-cli-skeleton input`): as that CLI prints.
    for requirement in AWSCLI.stepRequirements + AWSCLI.s3StateRequirements {
      let key = "\(requirement.service) \(requirement.operation)"
      guard answers[key] == nil else { continue }
      let skeleton = try JSONSerialization.data(
        withJSONObject: Dictionary(
          (["Key"] + requirement.parameters.map(\.name)).map { ($0, "") },
          uniquingKeysWith: { first, _ in first }))
      answers[key] = ["stdout": String(decoding: skeleton, as: UTF8.self)]
    }
    // IAM's simulator allows everything unless the test says otherwise.
    if answers["iam simulate-principal-policy"] == nil {
      answers["iam simulate-principal-policy"] = ["stdout": "\n"]
    }
    try JSONSerialization.data(withJSONObject: answers).write(to: responses)
    let fakes = repositoryRoot.appendingPathComponent("Tests/Fixtures/bin-fake").path
    let run = try await workspace.run(
      ["doctor"],
      environment: [
        "PATH": fakes + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"),
        "RUNBOOK_FAKE_RESPONSES": responses.path, "RUNBOOK_FAKE_LOG": log.path,
      ])
    let calls = loggedAWSCalls(log.path)
    XCTAssertEqual(
      calls.filter { $0["refused"] as? Bool == true }.compactMap { $0["argv"] as? [String] }, [],
      "calls the fakes were not told to expect")
    return (run, calls)
  }

  /// What `sts get-caller-identity --output json` prints for credentials of account 123456789012.
  private static let identity: [String: String] = [
    "stdout":
      #"{"UserId": "AIDAEXAMPLE", "Account": "123456789012", "Arn": "arn:aws:iam::123456789012:user/ops"}"#
      + "\n"
  ]

  /// What EC2 answers a `--dry-run` request, as the aws CLI prints it (exit 255).
  private static func dryRunAnswer(_ code: String, _ message: String) -> [String: Any] {
    [
      "exit": 255,
      "stderr": "\nAn error occurred (\(code)) when calling the CreateVpc operation: \(message)\n",
    ]
  }

  /// On real EC2, `create-vpc --dry-run` answers DryRunOperation when the call would be allowed:
  /// the permissions check passes, and nothing is created (no delete follows).
  func testADryRunThatWouldSucceedPassesThePermissionsCheck() async throws {
    let workspace = try Workspace()
    let (doctor, calls) = try await fakeDoctor(
      workspace,
      [
        "sts get-caller-identity": Self.identity,
        "ec2 create-vpc": Self.dryRunAnswer(
          "DryRunOperation", "Request would have succeeded, but DryRun flag is set."),
      ])
    let permissions = line("permissions", in: doctor.stdout)
    XCTAssertEqual(
      permissions, "OK    permissions      ec2:CreateVpc allowed (checked with --dry-run)",
      doctor.stdout)
    XCTAssertEqual(doctor.status, 0, doctor.summary)
    let createVpc = calls.first { $0["key"] as? String == "ec2 create-vpc" }
    XCTAssertTrue(
      (createVpc?["argv"] as? [String] ?? []).contains("--dry-run"),
      "\(String(describing: createVpc))")
    XCTAssertFalse(calls.contains { $0["key"] as? String == "ec2 delete-vpc" }, "\(calls)")
  }

  /// Credentials that may not create a VPC: EC2 answers UnauthorizedOperation (IAM-style APIs
  /// AccessDenied); either fails the permissions check, and doctor exits 1.
  func testADryRunThatIsDeniedFailsThePermissionsCheck() async throws {
    for (code, message) in [
      (
        "UnauthorizedOperation",
        "You are not authorized to perform this operation. Encoded authorization failure message: abc"
      ),
      ("AccessDenied", "User: arn:aws:iam::123456789012:user/ops is not authorized"),
    ] {
      let workspace = try Workspace(name: "denied\(code)")
      let (doctor, calls) = try await fakeDoctor(
        workspace,
        [
          "sts get-caller-identity": Self.identity,
          "ec2 create-vpc": Self.dryRunAnswer(code, message),
        ])
      XCTAssertEqual(doctor.status, 1, doctor.summary)
      XCTAssertEqual(
        line("permissions", in: doctor.stdout),
        "FAIL  permissions      ec2:CreateVpc is not allowed for these credentials", doctor.stdout)
      XCTAssertTrue(doctor.stdout.contains("fix: grant the IAM permissions"), doctor.stdout)
      XCTAssertTrue(doctor.stdout.contains("1 check(s) failed"), doctor.stdout)
      XCTAssertFalse(calls.contains { $0["key"] as? String == "ec2 delete-vpc" }, "\(calls)")
    }
  }

  /// MySQL 8.0 left RDS standard support on 2026-07-31 (runbooks/rds-mysql-support.json): doctor
  /// warns, naming the date and the AWS page, and `plan rds` counts Extended Support; 8.4 is OK
  /// and costs none. The tool reads today's date: from 2029-08-01 on, 8.0 is past Extended Support
  /// too and this test fails, as it should (the unit tests pin the day).
  func testAnEngineVersionPastStandardSupportWarnsAndThePlanCountsExtendedSupport() async throws {
    for version in ["8.0", "8.4"] {
      let workspace = try Workspace(name: "engine\(version)") { config in
        var rds = config["rds"] as! [String: Any]
        rds["engineVersion"] = version
        config["rds"] = rds
      }
      for table in ["prices.json", "rds-mysql-support.json"] {
        try FileManager.default.copyItem(
          at: repositoryRoot.appendingPathComponent("runbooks/" + table),
          to: workspace.directory.appendingPathComponent(table))
      }
      let (doctor, _) = try await fakeDoctor(
        workspace,
        [
          "sts get-caller-identity": Self.identity,
          "ec2 create-vpc": Self.dryRunAnswer(
            "DryRunOperation", "Request would have succeeded, but DryRun flag is set."),
        ])
      let found = line("engine version", in: doctor.stdout) ?? "missing"
      let plan = try await workspace.run(["plan", "rds"])
      XCTAssertEqual(plan.status, 0, plan.summary)
      let cost = plan.stdout.split(separator: "\n").first { $0.contains("RDS Extended Support") }
      if version == "8.0" {
        XCTAssertTrue(
          found.hasPrefix(
            "WARN  engine version   mysql 8.0: RDS standard support ended 2026-07-31; a new instance is enrolled in paid RDS Extended Support"
          ), doctor.stdout)
        XCTAssertTrue(
          found.contains("https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/"), found)
        XCTAssertTrue(doctor.stdout.contains("fix: set rds.engineVersion"), doctor.stdout)
        XCTAssertEqual(doctor.status, 0, "a warning fails nothing: \(doctor.summary)")
        XCTAssertTrue(
          cost?.contains("RDS Extended Support (mysql 8.0 past 2026-07-31)") == true, plan.stdout)
      } else {
        XCTAssertTrue(
          found.hasPrefix(
            "OK    engine version   mysql 8.4: RDS standard support until 2029-07-31"),
          doctor.stdout)
        XCTAssertNil(cost, plan.stdout)
        XCTAssertTrue(plan.stdout.contains("estimated monthly cost"), plan.stdout)
      }
    }
  }

  /// Credentials that may simulate: doctor asks IAM about every unconditioned action of `runbook
  /// policy` for the caller (an assumed role's session is simulated as its role).
  func testThePolicySimulatorCheckingEveryActionOfThePolicy() async throws {
    let workspace = try Workspace()
    let assumed = [
      "stdout":
        #"{"UserId": "AROAEXAMPLE:ops", "Account": "123456789012", "Arn": "arn:aws:sts::123456789012:assumed-role/deployer/ops"}"#
        + "\n"
    ]
    let (doctor, calls) = try await fakeDoctor(
      workspace,
      [
        "sts get-caller-identity": assumed,
        "ec2 create-vpc": Self.dryRunAnswer(
          "DryRunOperation", "Request would have succeeded, but DryRun flag is set."),
      ])
    XCTAssertEqual(doctor.status, 0, doctor.summary)
    let found = line("IAM policy", in: doctor.stdout) ?? "missing"
    XCTAssertTrue(
      found.hasPrefix("OK    IAM policy       the ")
        && found.contains("allowed for arn:aws:iam::123456789012:role/deployer"), doctor.stdout)
    let argv = try XCTUnwrap(
      calls.first { $0["key"] as? String == "iam simulate-principal-policy" }?["argv"]
        as? [String])
    let source = try XCTUnwrap(argv.firstIndex(of: "--policy-source-arn"))
    XCTAssertEqual(argv[source + 1], "arn:aws:iam::123456789012:role/deployer")
    for action in ["ec2:CreateVpc", "ecs:CreateService", "rds:CreateDBInstance", "sqs:CreateQueue"]
    {
      XCTAssertTrue(argv.contains(action), "\(action) not simulated: \(argv)")
    }
  }

  /// Credentials that may not simulate get a WARN naming the permission (doctor still passes);
  /// actions the simulator denies FAIL, named.
  func testAPrincipalThatMayNotSimulateIsWarnedAndDeniedActionsFail() async throws {
    let denied: [String: Any] = [
      "exit": 254,
      "stderr":
        "\nAn error occurred (AccessDenied) when calling the SimulatePrincipalPolicy operation: User: arn:aws:iam::123456789012:user/ops is not authorized to perform: iam:SimulatePrincipalPolicy\n",
    ]
    let dryRun = Self.dryRunAnswer(
      "DryRunOperation", "Request would have succeeded, but DryRun flag is set.")
    let workspace = try Workspace(name: "maynot")
    let (doctor, _) = try await fakeDoctor(
      workspace,
      [
        "sts get-caller-identity": Self.identity, "ec2 create-vpc": dryRun,
        "iam simulate-principal-policy": denied,
      ])
    XCTAssertEqual(doctor.status, 0, doctor.summary)
    let found = line("IAM policy", in: doctor.stdout) ?? "missing"
    XCTAssertTrue(
      found.hasPrefix(
        "WARN  IAM policy       not checked: iam:SimulatePrincipalPolicy is not allowed for arn:aws:iam::123456789012:user/ops"
      ), doctor.stdout)
    XCTAssertTrue(doctor.stdout.contains("fix: allow iam:SimulatePrincipalPolicy"), doctor.stdout)

    let short = try Workspace(name: "short")
    let (refused, _) = try await fakeDoctor(
      short,
      [
        "sts get-caller-identity": Self.identity, "ec2 create-vpc": dryRun,
        "iam simulate-principal-policy": ["stdout": "ecr:PutImage\tiam:ListRoles\n"],
      ])
    XCTAssertEqual(refused.status, 1, refused.summary)
    XCTAssertTrue(
      line("IAM policy", in: refused.stdout)?.hasPrefix("FAIL  IAM policy       2 of ") == true
        && refused.stdout.contains(
          "arn:aws:iam::123456789012:user/ops: ecr:PutImage, iam:ListRoles"),
      refused.stdout)
    XCTAssertTrue(refused.stdout.contains("fix: attach the policy 'runbook policy' prints"))
  }

  /// A `--state-dir` that names a file fails the state directory check, as `run` would fail
  /// before its first request.
  func testAStateDirectoryThatIsAFileFailsTheStateDirectoryCheck() async throws {
    let workspace = try Workspace()
    try Data("x".utf8).write(to: URL(fileURLWithPath: workspace.stateDirectory))
    let (doctor, _) = try await fakeDoctor(
      workspace,
      [
        "sts get-caller-identity": Self.identity,
        "ec2 create-vpc": Self.dryRunAnswer(
          "DryRunOperation", "Request would have succeeded, but DryRun flag is set."),
      ])
    XCTAssertEqual(doctor.status, 1, doctor.summary)
    XCTAssertEqual(
      line("state directory", in: doctor.stdout),
      "FAIL  state directory  \(workspace.stateDirectory): cannot write the checkpoint (a file, not a folder)",
      doctor.stdout)
  }

  /// A journal line damaged in the middle fails the checkpoint check, naming the line, as it
  /// would stop a run; doctor changes nothing.
  func testAJournalLineDamagedInTheMiddleFailsTheCheckpointCheck() async throws {
    let workspace = try seededWorkspace()
    let path = workspace.stateDirectory + "/journal.jsonl"
    let handle = try XCTUnwrap(FileHandle(forWritingAtPath: path))
    handle.seekToEndOfFile()
    handle.write(Data("{\"action\":\"network/igw\",\"at\n".utf8))
    try handle.close()
    let lineage = try workspace.checkpoint().lineage
    try Journal(path: path).append(
      JournalEntry(lineage: lineage, event: .intent, action: "network/eip"))
    let before = workspace.stateSnapshot()
    let (doctor, _) = try await fakeDoctor(
      workspace,
      [
        "sts get-caller-identity": Self.identity,
        "ec2 create-vpc": Self.dryRunAnswer(
          "DryRunOperation", "Request would have succeeded, but DryRun flag is set."),
      ])
    XCTAssertEqual(doctor.status, 1, doctor.summary)
    let found = line("checkpoint", in: doctor.stdout)
    XCTAssertTrue(
      found?.hasPrefix("FAIL  checkpoint       \(path): line 2 is not a journal entry") == true,
      doctor.stdout)
    XCTAssertTrue(doctor.stdout.contains("fix: repair or remove the line named"), doctor.stdout)
    XCTAssertEqual(workspace.stateSnapshot(), before, "doctor changed the state directory")
  }

  func testInvalidCredentialsFailTheCredentialsCheck() async throws {
    let workspace = try Workspace()
    let (doctor, _) = try await fakeDoctor(
      workspace,
      [
        "sts get-caller-identity": [
          "exit": 255,
          "stderr":
            "\nAn error occurred (InvalidClientTokenId) when calling the GetCallerIdentity operation: The security token included in the request is invalid.\n",
        ]
      ])
    XCTAssertEqual(doctor.status, 1, doctor.summary)
    let credentials = line("credentials", in: doctor.stdout)
    XCTAssertTrue(credentials?.hasPrefix("FAIL ") == true, doctor.stdout)
    XCTAssertTrue(credentials?.contains("InvalidClientTokenId") == true, doctor.stdout)
    XCTAssertTrue(doctor.stdout.contains("fix: configure credentials"), doctor.stdout)
  }

  func testACheckpointOfAnotherAccountFailsTheCheckpointCheck() async throws {
    let workspace = try Workspace()
    let state = StateDirectory(path: workspace.stateDirectory)
    try state.prepare()
    var checkpoint = Checkpoint(deployment: "unisync", region: "ap-northeast-2")
    checkpoint.account = "999999999999"
    try state.save(checkpoint)
    let before = workspace.stateSnapshot()

    let doctor = try await workspace.run(["doctor"], environment: try dockerEnvironment)
    XCTAssertEqual(doctor.status, 1, doctor.summary)
    let found = line("checkpoint", in: doctor.stdout)
    XCTAssertTrue(found?.hasPrefix("FAIL ") == true, doctor.stdout)
    XCTAssertTrue(
      found?.contains("999999999999") == true && found?.contains("123456789012") == true,
      doctor.stdout)
    XCTAssertEqual(workspace.stateSnapshot(), before, "doctor changed the state directory")
  }

  /// PATH as the tests have it, but every directory holding `tool` replaced by a copy of links to
  /// everything else in it.
  private func pathWithout(_ tool: String, in directory: URL) throws -> String {
    let files = FileManager.default
    var entries: [String] = []
    for (index, entry) in Workspace.shimmedPath.split(separator: ":").map(String.init).enumerated()
    {
      guard files.fileExists(atPath: entry + "/" + tool) else {
        entries.append(entry)
        continue
      }
      let mirror = directory.appendingPathComponent("path-\(index)").path
      try files.createDirectory(atPath: mirror, withIntermediateDirectories: true)
      for name in try files.contentsOfDirectory(atPath: entry) where name != tool {
        try? files.createSymbolicLink(
          atPath: mirror + "/" + name, withDestinationPath: entry + "/" + name)
      }
      entries.append(mirror)
    }
    return entries.joined(separator: ":")
  }
}
