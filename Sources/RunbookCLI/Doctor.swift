import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook

/// One line of `runbook doctor`.
package struct DoctorCheck: Sendable, Hashable {
  package enum Level: String, Sendable {
    case ok = "OK"
    case warn = "WARN"
    case fail = "FAIL"
  }
  package var name: String
  package var level: Level
  package var detail: String
  package var fix: String?
}

/// Checks the machine, the credentials, the configuration and the state directory before a run.
struct Doctor {
  let runner: any CommandRunner
  let variables: [String: String]
  /// The folder of the running `runbook`, where the health probe is looked for first.
  let executableDirectory: String?
  let configPath: String
  let context: Result<Context, Error>

  func checks() async -> [DoctorCheck] {
    var checks: [DoctorCheck] = []
    let path = variables["PATH"]
    let (aws, awsVersion) = await awsCheck(path: path)
    checks.append(aws)
    checks.append(await dockerCheck(path: path))
    for tool in ["zip", "pip3"] {
      let found =
        findExecutable(tool, path: path)
        ?? (tool == "pip3" ? findExecutable("pip", path: path) : nil)
      checks.append(
        found.map { DoctorCheck(name: tool, level: .ok, detail: $0, fix: nil) }
          ?? DoctorCheck(
            name: tool, level: .fail, detail: "not found on PATH",
            fix:
              "install it (apt-get install \(tool == "zip" ? "zip" : "python3-pip")): the lambda step packages the function with it"
          ))
    }
    checks.append(healthProbeCheck(path: path))
    let context: Context
    switch self.context {
    case .failure(let error):
      checks.append(
        DoctorCheck(
          name: "configuration", level: .fail,
          detail: String(describing: error).split(separator: "\n").first.map(String.init)
            ?? "\(error)",
          fix: "correct the file and run doctor again"))
      return checks
    case .success(let value):
      context = value
      checks.append(
        DoctorCheck(
          name: "configuration", level: .ok,
          detail:
            "\(configPath): deployment \(context.deployment.name), region \(context.aws.region)",
          fix: nil))
    }
    if aws.level != .fail {
      checks.append(await awsOptionsCheck(context, version: awsVersion))
    }
    let caller = await credentialsCheck(context, into: &checks)
    let account = caller?.account
    checks.append(await checkpointCheck(context, account: account))
    checks.append(buildContextsCheck(context))
    checks.append(engineSupportCheck(context))
    if context.s3State != nil {
      checks.append(await s3StateCheck(context))
    } else {
      checks.append(stateDirectoryCheck(context))
    }
    if let caller {
      checks.append(await permissionCheck(context))
      checks.append(await policySimulationCheck(context, caller: caller.arn))
    }
    return checks
  }

  func run(_ executable: String, _ arguments: [String]) async -> ProcessOutput? {
    try? await runner.run(Invocation(executable: executable, arguments: arguments))
  }

  /// The check, and what `aws --version` printed first (`aws-cli/2.9.19`).
  private func awsCheck(path: String?) async -> (DoctorCheck, String?) {
    guard findExecutable("aws", path: path) != nil else {
      return (
        DoctorCheck(
          name: "aws CLI", level: .fail, detail: "not found on PATH",
          fix: "install the AWS CLI (v1: pip install awscli; or AWS's v2 installer)"), nil
      )
    }
    guard let output = await run("aws", ["--version"]), output.succeeded else {
      return (
        DoctorCheck(
          name: "aws CLI", level: .fail, detail: "'aws --version' failed",
          fix: "reinstall the AWS CLI"), nil
      )
    }
    let text = (output.stdoutText + output.stderrText).trimmingCharacters(
      in: .whitespacesAndNewlines)
    let version = text.split(separator: " ").first.map(String.init) ?? text
    let major =
      version.split(separator: "/").dropFirst().first?.split(separator: ".").first.map(String.init)
      ?? "?"
    guard major == "1" || major == "2" else {
      return (
        DoctorCheck(
          name: "aws CLI", level: .warn, detail: "\(version): an unknown major version",
          fix: "use aws CLI v1 or v2"), version
      )
    }
    return (
      DoctorCheck(name: "aws CLI", level: .ok, detail: "\(version) (v\(major))", fix: nil), version
    )
  }

  /// Whether the aws CLI knows the parameters the run needs beyond its operations: those the
  /// steps pass that older CLIs lack (``AWSCLI/stepRequirements``) and, for S3 state, the
  /// conditional requests (``AWSCLI/s3StateRequirements``), asked with `--generate-cli-skeleton`
  /// (no request). With the state in a folder, a CLI without the conditional requests is fine:
  /// the detail says what S3 state would need.
  private func awsOptionsCheck(_ context: Context, version: String?) async -> DoctorCheck {
    let name = "aws CLI options"
    let s3 = context.s3State.map { "S3 state (\($0))" }
    let probe = await AWSCLI.probe(
      AWSCLI.stepRequirements + AWSCLI.s3StateRequirements, runner: runner,
      resolver: Resolver(aws: context.aws, secrets: SecretStore()))
    let cli = version ?? "this aws CLI"
    func isS3(_ requirement: AWSCLIRequirement) -> Bool {
      AWSCLI.s3StateRequirements.contains(requirement)
    }
    var needed = probe
    needed.missing.removeAll { s3 == nil && isS3($0.requirement) }
    needed.unknown.removeAll { s3 == nil && isS3($0.requirement) }
    if !needed.missing.isEmpty {
      let users = [
        needed.missing.contains { !isS3($0.requirement) } ? "the steps" : nil,
        needed.missing.contains { isS3($0.requirement) } ? s3 : nil,
      ].compactMap { $0 }
      return DoctorCheck(
        name: name, level: .fail,
        detail:
          "\(cli) has no \(needed.missingText), needed by \(users.joined(separator: " and "))",
        fix: "install \(needed.upgradeText(version: version))"
          + (users.contains("the steps") ? "" : ", or keep the state in a folder (--state-dir)"))
    }
    if let unknown = needed.unknown.first {
      return DoctorCheck(
        name: name, level: .warn,
        detail:
          "could not tell whether \(cli) knows \(unknown.requirement.describe(unknown.requirement.parameters)) (\(unknown.reason))",
        fix: nil)
    }
    var known = "knows every option the steps use"
    if let s3 {
      known += " and the conditional requests \(s3) is written with"
    } else if !probe.missing.isEmpty {
      // Only the conditional requests are missing, and the state is in a folder.
      known +=
        "; S3 state (--state s3://) would need \(probe.upgradeText(version: version)): it has no \(probe.missingText)"
    }
    return DoctorCheck(name: name, level: .ok, detail: "\(cli) " + known, fix: nil)
  }

  /// verify fetches the health URL with `runbook-health-probe`, built and installed beside runbook.
  private func healthProbeCheck(path: String?) -> DoctorCheck {
    if let found = HealthProbe.programPath(besides: executableDirectory, path: path) {
      return DoctorCheck(name: "health probe", level: .ok, detail: found, fix: nil)
    }
    let besides =
      executableDirectory.map { "not in \($0) (beside runbook) nor on PATH" } ?? "not found on PATH"
    return DoctorCheck(
      name: "health probe", level: .fail, detail: "\(HealthProbe.tool) " + besides,
      fix:
        "install it beside runbook ('swift build' builds both; with --product, build \(HealthProbe.tool) too): 'run verify' fetches the health URL with it"
    )
  }

  private func dockerCheck(path: String?) async -> DoctorCheck {
    guard findExecutable("docker", path: path) != nil else {
      return DoctorCheck(
        name: "docker", level: .fail, detail: "not found on PATH",
        fix:
          "install Docker (apt-get install docker.io): the ecr and update steps build and push images"
      )
    }
    guard let output = await run("docker", ["version", "--format", "{{.Server.Version}}"]),
      output.succeeded
    else {
      return DoctorCheck(
        name: "docker", level: .fail, detail: "the Docker daemon does not answer",
        fix: "start dockerd (or Docker Desktop), or point DOCKER_HOST at a running engine")
    }
    return DoctorCheck(
      name: "docker", level: .ok,
      detail: "engine \(output.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines))",
      fix: nil)
  }

  func awsArguments(_ context: Context, _ arguments: [String]) -> [String] {
    arguments + context.aws.globalArguments
  }

  /// The account and the ARN of the credentials, nil when they do not answer.
  private func credentialsCheck(_ context: Context, into checks: inout [DoctorCheck]) async
    -> (account: String, arn: String)?
  {
    guard
      let output = await run(
        "aws", awsArguments(context, ["sts", "get-caller-identity", "--output", "json"]))
    else {
      checks.append(
        DoctorCheck(name: "credentials", level: .fail, detail: "cannot run aws", fix: nil))
      return nil
    }
    guard output.succeeded,
      let object = try? JSONSerialization.jsonObject(with: output.standardOutput) as? [String: Any],
      let account = object["Account"] as? String
    else {
      let reason = output.stderrText.split(separator: "\n").last.map(String.init) ?? "no answer"
      checks.append(
        DoctorCheck(
          name: "credentials", level: .fail, detail: "sts get-caller-identity failed: \(reason)",
          fix:
            "configure credentials (aws configure, AWS_PROFILE or --profile) for region \(context.aws.region)"
        ))
      return nil
    }
    let arn = object["Arn"] as? String ?? "?"
    checks.append(
      DoctorCheck(
        name: "credentials", level: .ok,
        detail: "account \(account) as \(arn), region \(context.aws.region)", fix: nil))
    return (account, arn)
  }

  private func checkpointCheck(_ context: Context, account: String?) async -> DoctorCheck {
    let engine = context.engine(
      runner: runner, reporter: SilentReporter(), prompter: nil, options: RunOptions())
    do {
      guard let checkpoint = try await engine.loadCheckpoint() else {
        return DoctorCheck(
          name: "checkpoint", level: .ok, detail: "none yet in \(engine.state.location)", fix: nil)
      }
      if let pinned = checkpoint.account, let account, pinned != account {
        throw CheckpointError.foreignAccount(
          file: engine.state.stateFile, checkpoint: pinned, credentials: account)
      }
      // The journal as a run reads it first (a local one whole; in S3 nothing is replayed here).
      try await engine.state.journal.verify(lineage: checkpoint.lineage, actions: [])
      return DoctorCheck(
        name: "checkpoint", level: .ok,
        detail:
          "deployment \(checkpoint.deployment), account \(checkpoint.account ?? "?"), region \(checkpoint.region), serial \(checkpoint.serial)",
        fix: nil)
    } catch {
      return DoctorCheck(
        name: "checkpoint", level: .fail, detail: "\(error)",
        fix: {
          if case .corruptJournal? = error as? CheckpointError {
            return "repair or remove the line named, then check what it names exists only once"
          }
          return "use the matching credentials, region or --state-dir"
        }())
    }
  }

  /// S3 state: the bucket answers, keeps old versions (recommended), and who holds the lock.
  private func s3StateCheck(_ context: Context) async -> DoctorCheck {
    guard let store = context.stateStore(runner: runner) as? S3StateStore else {
      return stateDirectoryCheck(context)
    }
    do {
      if let holder = try await store.lockHolder() {
        return DoctorCheck(
          name: "state (S3)", level: holder.expired() ? .fail : .warn,
          detail: LockHeldError(path: store.lockFile, holder: holder).description,
          fix: holder.expired()
            ? "when that run is gone: runbook unlock" : "wait for that run to finish")
      }
      let status = try await store.versioning()
      guard status == "Enabled" else {
        return DoctorCheck(
          name: "state (S3)", level: .warn,
          detail:
            "\(store.location): bucket versioning is \(status ?? "off"), so an overwritten or deleted state.json cannot be brought back",
          fix:
            "aws s3api put-bucket-versioning --bucket \(store.root.bucket) --versioning-configuration Status=Enabled"
        )
      }
      return DoctorCheck(
        name: "state (S3)", level: .ok, detail: "\(store.location): versioned bucket, not locked",
        fix: nil)
    } catch {
      return DoctorCheck(
        name: "state (S3)", level: .fail, detail: "\(error)",
        fix: "create the bucket (with versioning on) or correct --state and the credentials")
    }
  }

  private func buildContextsCheck(_ context: Context) -> DoctorCheck {
    let base = context.deployment.baseDirectory
    func absolute(_ path: String) -> String { path.hasPrefix("/") ? path : base + "/" + path }
    var missing: [String] = []
    for service in context.deployment.services {
      let dockerfile = absolute(service.buildContext) + "/Dockerfile"
      if !FileManager.default.fileExists(atPath: dockerfile) {
        missing.append("\(service.name): \(dockerfile)")
      }
    }
    let lambda = absolute(context.deployment.lambda.source)
    if !FileManager.default.fileExists(atPath: lambda) { missing.append("lambda: \(lambda)") }
    if missing.isEmpty {
      return DoctorCheck(
        name: "build contexts", level: .ok,
        detail: "\(context.deployment.services.count) services and the lambda source are present",
        fix: nil)
    }
    return DoctorCheck(
      name: "build contexts", level: .fail, detail: "missing: " + missing.joined(separator: ", "),
      fix: "point services[].buildContext and lambda.source at existing folders")
  }

  private func stateDirectoryCheck(_ context: Context) -> DoctorCheck {
    let state = StateDirectory(path: context.stateDirectory)
    // The check a run makes before its first request (a file in the way, a folder not writable).
    do { try state.checkWritable() } catch {
      return DoctorCheck(
        name: "state directory", level: .fail, detail: "\(error)",
        fix: "choose another --state-dir or fix the permissions")
    }
    if let holder = state.lockHolder() {
      return DoctorCheck(
        name: "state directory", level: .fail,
        detail:
          "locked by pid \(holder.pid) on \(holder.host) ('\(holder.command)', since \(holder.startedAt))",
        fix: "wait for that run to finish")
    }
    return DoctorCheck(
      name: "state directory", level: .ok, detail: "\(context.stateDirectory) writable, not locked",
      fix: nil)
  }

  private func permissionCheck(_ context: Context) async -> DoctorCheck {
    let arguments = awsArguments(
      context,
      ["ec2", "create-vpc", "--cidr-block", context.deployment.network.vpcCidr, "--dry-run"])
    guard let output = await run("aws", arguments) else {
      return DoctorCheck(name: "permissions", level: .warn, detail: "cannot run aws", fix: nil)
    }
    if output.succeeded {
      // The endpoint ignored --dry-run and really created a VPC: undo it and say so.
      let object = try? JSONSerialization.jsonObject(with: output.standardOutput) as? [String: Any]
      let vpc = (object?["Vpc"] as? [String: Any])?["VpcId"] as? String
      var undone = false
      if let vpc {
        // A VPC made a moment ago may not be visible to every call yet (EC2 is eventually
        // consistent): its delete is tried again for a few seconds while EC2 says it is not found.
        for attempt in 1...8 {
          guard
            let deleted = await run(
              "aws", awsArguments(context, ["ec2", "delete-vpc", "--vpc-id", vpc]))
          else { break }
          undone = deleted.succeeded
          guard !undone, awsErrorCode(in: deleted.stderrText) == "InvalidVpcID.NotFound",
            attempt < 8
          else { break }
          try? await Task.sleep(nanoseconds: UInt64(attempt) * 500_000_000)
        }
      }
      return DoctorCheck(
        name: "permissions", level: .warn,
        detail: "the endpoint ignored --dry-run and created \(vpc ?? "a VPC")"
          + (undone ? ", which doctor deleted again" : ", which doctor could not delete"),
        fix: undone ? nil : "delete \(vpc ?? "the VPC") by hand")
    }
    switch awsErrorCode(in: output.stderrText) {
    case "DryRunOperation":
      return DoctorCheck(
        name: "permissions", level: .ok, detail: "ec2:CreateVpc allowed (checked with --dry-run)",
        fix: nil)
    case "UnauthorizedOperation", "AccessDenied", "AccessDeniedException":
      return DoctorCheck(
        name: "permissions", level: .fail,
        detail: "ec2:CreateVpc is not allowed for these credentials",
        fix:
          "grant the IAM permissions the guide lists (ECS, RDS, Lambda, SQS, Secrets Manager, EC2)")
    default:
      return DoctorCheck(
        name: "permissions", level: .warn,
        detail:
          "could not tell (\(output.stderrText.split(separator: "\n").last.map(String.init) ?? "no answer"))",
        fix: nil)
    }
  }
}
