import Foundation
import Synchronization
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

/// What the tool needs of the installed aws CLI beyond its operations: the probe
/// (`--generate-cli-skeleton input`), the minimum releases, and where a CLI without them is
/// stopped (the S3 state store before its first write, doctor, a step's failure).
final class AWSCLIRequirementsTests: XCTestCase {
  /// What Debian 12's awscli package (aws-cli/2.9.19) answers: no conditional requests in S3.
  static let debianVersion =
    "aws-cli/2.9.19 Python/3.11.2 Linux/6.1.0 source/x86_64.debian.12 prompt/off"

  func testOptionsAreTheModelsNamesAsTheCLISpellsThem() {
    XCTAssertEqual(
      AWSCLIParameter("IfNoneMatch", sinceV1: "", sinceV2: "").option, "--if-none-match")
    XCTAssertEqual(AWSCLIParameter("IfMatch", sinceV1: "", sinceV2: "").option, "--if-match")
    XCTAssertEqual(
      AWSCLIParameter("ManageMasterUserPassword", sinceV1: "", sinceV2: "").option,
      "--manage-master-user-password")
    XCTAssertEqual(
      AWSCLIParameter("SSECustomerKey", sinceV1: "", sinceV2: "").option, "--sse-customer-key")
    XCTAssertEqual(AWSCLIParameter("MultiAZ", sinceV1: "", sinceV2: "").option, "--multi-az")
    XCTAssertEqual(
      AWSCLI.s3StateRequirements.map { $0.probe.arguments.map(\.description) },
      [
        ["s3api", "put-object", "--generate-cli-skeleton", "input"],
        ["s3api", "delete-object", "--generate-cli-skeleton", "input"],
      ])
  }

  func testASkeletonTellsWhatIsMissingAndAnythingElseTellsNothing() throws {
    let put = try XCTUnwrap(AWSCLI.s3StateRequirements.first)
    XCTAssertEqual(
      put.missing(in: Data(#"{"Bucket": "", "Key": "", "IfMatch": ""}"#.utf8))?.map(\.name),
      ["IfNoneMatch"])
    XCTAssertEqual(
      put.missing(in: Data(#"{"Bucket": "", "IfMatch": "", "IfNoneMatch": ""}"#.utf8))?.count, 0)
    XCTAssertNil(put.missing(in: Data()))
    XCTAssertNil(put.missing(in: Data("unit tests never run aws".utf8)))
    XCTAssertNil(put.missing(in: Data("{}".utf8)))
  }

  func testTheMinimumVersionsAreTheNewestOfWhatIsMissing() {
    XCTAssertTrue(AWSCLI.versionPrecedes("1.36.8", "1.36.10"))
    XCTAssertFalse(AWSCLI.versionPrecedes("2.22.5", "2.9.19"))
    XCTAssertFalse(AWSCLI.versionPrecedes("2.22.5", "2.22.5"))
    var probe = AWSCLIProbe()
    for requirement in AWSCLI.s3StateRequirements {
      probe.missing.append((requirement, requirement.parameters))
    }
    XCTAssertEqual(probe.minimumVersions.v1, "1.36.10")
    XCTAssertEqual(probe.minimumVersions.v2, "2.22.5")
    XCTAssertEqual(
      probe.missingText,
      "s3api put-object --if-match, --if-none-match and s3api delete-object --if-match")
    XCTAssertEqual(
      probe.upgradeText(version: "aws-cli/1.22.34"),
      "aws CLI v1 1.36.10 or later (or v2 2.22.5 or later)")
    XCTAssertEqual(
      probe.upgradeText(version: "aws-cli/2.9.19"),
      "aws CLI v2 2.22.5 or later (or v1 1.36.10 or later)")
  }

  /// An option this aws CLI does not know fails a step with one line naming the releases that
  /// know it, not the CLI's usage text.
  func testAnUnknownOptionIsExplainedWithTheReleasesThatKnowIt() {
    let usage =
      "\nusage: aws [options] <command> <subcommand> [<subcommand> ...] [parameters]\nTo see help text, you can run:\n\n  aws help\n  aws <command> help\n  aws <command> <subcommand> help\n\n"
    XCTAssertEqual(
      explainAWSFailure(usage + "Unknown options: --manage-master-user-password\n"),
      "Unknown options: --manage-master-user-password: this aws CLI is older than rds create-db-instance --manage-master-user-password: install aws CLI v2 2.9.10 or later (or v1 1.27.36 or later) (see 'runbook doctor')"
    )
    XCTAssertEqual(
      explainAWSFailure(usage + "Unknown options: --fancy-new-thing, x\n"),
      "Unknown options: --fancy-new-thing, x: this aws CLI does not know them (see 'runbook doctor')"
    )
    XCTAssertEqual(
      AWSCLIDialect().explain(
        "\nAn error occurred (InvalidParameterValue) when calling the CreateVpc operation: bad"),
      "An error occurred (InvalidParameterValue) when calling the CreateVpc operation: bad")
  }

  // MARK: - The S3 state store

  func store(_ s3: FakeS3) throws -> S3StateStore {
    S3StateStore(
      root: S3Location(bucket: "state-bucket", prefix: "runbook/unisync"), runner: s3,
      aws: AWSSettings(region: "ap-northeast-2", endpointURL: "http://127.0.0.1:1"),
      logsDirectory: try makeScratchFolder().appendingPathComponent("logs").path)
  }

  /// Debian 12's aws-cli/2.9.19: the store refuses before its first write, with one line naming
  /// what is missing and the releases that have it; nothing is written, no log folder made.
  func testTheS3StoreRefusesAnAWSCLIWithoutConditionalRequestsBeforeItsFirstWrite() async throws {
    let s3 = FakeS3()
    s3.version.withLock { $0 = Self.debianVersion }
    s3.lacks.withLock { $0 = ["IfMatch", "IfNoneMatch"] }
    let state = try store(s3)
    do {
      try await state.prepare()
      XCTFail("prepare went on without conditional requests")
    } catch let error as AWSCLITooOld {
      XCTAssertEqual(
        "\(error)",
        "s3://state-bucket/runbook/unisync: S3 state is written with conditional requests, and this aws CLI (aws-cli/2.9.19) has no s3api put-object --if-match, --if-none-match and s3api delete-object --if-match: install aws CLI v2 2.22.5 or later (or v1 1.36.10 or later), or keep the state in a folder (--state-dir); nothing was written"
      )
    }
    XCTAssertEqual(s3.probes.withLock { $0.count }, 2, "put-object and delete-object were asked")
    XCTAssertTrue(
      s3.probes.withLock { $0 }.allSatisfy {
        $0.contains("--endpoint-url") && $0.contains("--region") && !$0.contains("--bucket")
      })
    XCTAssertEqual(s3.calls.withLock { $0.count }, 0, "no call reached S3")
    XCTAssertFalse(FileManager.default.fileExists(atPath: state.logsDirectory))
  }

  /// With the conditional requests the store asks once per process and then works as before.
  func testTheS3StoreAsksOnceAndGoesOnWhenTheCLIKnowsThem() async throws {
    let s3 = FakeS3()
    let state = try store(s3)
    try await state.prepare()
    try await state.prepare()
    XCTAssertEqual(s3.probes.withLock { $0.count }, 2)
    let lock = try await state.acquireLock(command: "runbook run")
    await lock.release()
    XCTAssertEqual(s3.probes.withLock { $0.count }, 2)
    XCTAssertEqual(s3.operations("put-object").count, 1)
  }

  /// A probe that tells nothing (a CLI that fails it, a fake) does not stop the run: the writes
  /// themselves then say what is wrong.
  func testAProbeThatTellsNothingLetsTheStoreGoOn() async throws {
    let runner = ScriptedRunner()
    runner.on("aws", "s3api", "put-object", "--generate-cli-skeleton", reply: .failure("boom"))
    runner.on("aws", "s3api", "delete-object", "--generate-cli-skeleton", reply: .ok("not json"))
    let state = S3StateStore(
      root: S3Location(bucket: "state-bucket", prefix: "p"), runner: runner,
      aws: AWSSettings(region: "ap-northeast-2"),
      logsDirectory: try makeScratchFolder().appendingPathComponent("logs").path)
    try await state.checkCLI()
    let probe = await AWSCLI.probe(
      AWSCLI.s3StateRequirements, runner: runner,
      resolver: Resolver(aws: AWSSettings(region: "ap-northeast-2"), secrets: SecretStore()))
    XCTAssertEqual(probe.missing.count, 0)
    XCTAssertEqual(probe.unknown.map(\.reason), ["boom", "it printed no JSON skeleton"])
  }

  /// `runbook reset` and `runbook unlock` on S3 state with such a CLI: exit 2, one line, before
  /// the lock is taken or the operator is asked; the objects are as they were.
  func testResetAndUnlockStopBeforeAnyWrite() async throws {
    let s3 = FakeS3()
    let state = try store(s3)
    var checkpoint = Checkpoint(deployment: "unisync", region: "ap-northeast-2")
    checkpoint.account = "123456789012"
    try await state.save(checkpoint)
    _ = try await state.acquireLock(command: "runbook run (a run that died)")
    let before = s3.objects.withLock { $0.mapValues(\.data) }
    s3.calls.withLock { $0 = [] }
    s3.version.withLock { $0 = Self.debianVersion }
    s3.lacks.withLock { $0 = ["IfMatch", "IfNoneMatch"] }
    let folder = try makeScratchFolder().path
    for arguments in [["reset", "sqs"], ["unlock", "--yes", "--force"]] {
      let (status, output) = await frontend(
        s3, ["--state-dir", folder, "--state", "s3://state-bucket"] + arguments)
      XCTAssertEqual(status, ExitStatus.usage, output)
      XCTAssertEqual(output.split(separator: "\n").count, 1, output)
      XCTAssertTrue(output.hasPrefix("error: s3://state-bucket/runbook/unisync: S3 state"), output)
      XCTAssertTrue(output.contains("v2 2.22.5") && output.contains("v1 1.36.10"), output)
    }
    XCTAssertEqual(s3.operations("put-object").count, 0)
    XCTAssertEqual(s3.operations("delete-object").count, 0)
    XCTAssertEqual(s3.objects.withLock { $0.mapValues(\.data) }, before)
  }

  // MARK: - doctor

  /// `runbook -c runbooks/local.json ARGUMENTS` with `s3` as the only runner: exit status and output.
  func frontend(_ s3: FakeS3, _ arguments: [String]) async -> (Int32, String) {
    let output = BufferOutput()
    let frontend = Frontend(
      environment: Frontend.Environment(
        output: output, errors: output, inputIsTerminal: false,
        variables: ["TERM": "dumb", "PATH": stubToolPath], workingDirectory: packageRoot.path),
      runner: s3)
    let status = await frontend.run(["-c", "runbooks/local.json"] + arguments)
    return (status, output.text)
  }

  /// doctor's `aws CLI options` line, and all it printed.
  func doctorLine(_ s3: FakeS3, _ extra: [String] = []) async throws -> (String, String) {
    let folder = try makeScratchFolder().path
    let (_, text) = await frontend(s3, ["--state-dir", folder] + extra + ["doctor"])
    let line =
      text.split(separator: "\n").first { $0.dropFirst(6).hasPrefix("aws CLI options") }
      .map(String.init) ?? "no 'aws CLI options' line in:\n\(text)"
    return (line, text)
  }

  /// doctor: aws-cli/2.9.19 is fine with the state in a folder (it says what S3 state would
  /// need), and fails the check with S3 state; a CLI that knows everything passes both.
  func testDoctorJudgesTheCLIByWhatTheStateNeeds() async throws {
    let debian = FakeS3()
    debian.version.withLock { $0 = Self.debianVersion }
    debian.lacks.withLock { $0 = ["IfMatch", "IfNoneMatch"] }
    let (local, _) = try await doctorLine(debian)
    XCTAssertEqual(
      local,
      "OK    aws CLI options  aws-cli/2.9.19 knows every option the steps use; S3 state (--state s3://) would need aws CLI v2 2.22.5 or later (or v1 1.36.10 or later): it has no s3api put-object --if-match, --if-none-match and s3api delete-object --if-match"
    )
    let (remote, text) = try await doctorLine(debian, ["--state", "s3://state-bucket"])
    XCTAssertEqual(
      remote,
      "FAIL  aws CLI options  aws-cli/2.9.19 has no s3api put-object --if-match, --if-none-match and s3api delete-object --if-match, needed by S3 state (s3://state-bucket/runbook/unisync)"
    )
    XCTAssertTrue(
      text.contains(
        "fix: install aws CLI v2 2.22.5 or later (or v1 1.36.10 or later), or keep the state in a folder (--state-dir)"
      ), text)

    let current = FakeS3()
    current.version.withLock { $0 = "aws-cli/1.45.11 Python/3.11.7 Linux/6.1 botocore/1.43.11" }
    let (fine, _) = try await doctorLine(current, ["--state", "s3://state-bucket"])
    XCTAssertEqual(
      fine,
      "OK    aws CLI options  aws-cli/1.45.11 knows every option the steps use and the conditional requests S3 state (s3://state-bucket/runbook/unisync) is written with"
    )
  }

  /// An aws CLI older than late 2022 (Ubuntu 22.04's 1.22.34) lacks options of the steps: doctor
  /// fails the check, naming them and the releases that know them.
  func testDoctorFailsACLIOlderThanTheStepsOptions() async throws {
    let old = FakeS3()
    old.version.withLock { $0 = "aws-cli/1.22.34 Python/3.10.12 Linux/6.1 botocore/1.23.34" }
    old.lacks.withLock {
      $0 = ["IfMatch", "IfNoneMatch", "ManageMasterUserPassword", "IncludePlannedDeletion"]
    }
    let (line, text) = try await doctorLine(old)
    XCTAssertEqual(
      line,
      "FAIL  aws CLI options  aws-cli/1.22.34 has no rds create-db-instance --manage-master-user-password and secretsmanager list-secrets --include-planned-deletion, needed by the steps"
    )
    XCTAssertTrue(
      text.contains("fix: install aws CLI v1 1.27.40 or later (or v2 2.9.12 or later)\n"), text)
  }
}
