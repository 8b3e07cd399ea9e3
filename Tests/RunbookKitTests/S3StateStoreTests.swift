import Foundation
import Synchronization
import XCTest

@testable import RunbookAWS
@testable import RunbookCLI
@testable import RunbookEngine
@testable import RunbookProcess
@testable import RunbookState
@testable import UniSyncRunbook

#if canImport(Glibc)
  import Glibc
#endif

/// An in-memory S3 bucket answering `aws s3api` invocations the way aws CLI v1 and S3 do,
/// conditional writes included; every other command fails the test.
final class FakeS3: CommandRunner {
  struct Object {
    var data: Data
    var eTag: String
  }

  struct Call {
    var argv: [String]
    /// Permissions of the `--body` file when the call ran.
    var bodyMode: Int?
  }

  let objects = Mutex<[String: Object]>([:])
  let calls = Mutex<[Call]>([])
  let versioning = Mutex<String?>(nil)
  /// An operation whose next call ends as if Ctrl-C killed aws.
  let interruptNext = Mutex<String?>(nil)
  private let counter = Mutex(0)
  /// What `aws --version` prints (nil: it fails).
  let version = Mutex<String?>(nil)
  /// Parameters this aws CLI lacks in its skeletons (`IfMatch`: aws-cli/2.9.19 of Debian 12).
  let lacks = Mutex<Set<String>>([])
  /// The `--generate-cli-skeleton` probes (kept out of ``calls``).
  let probes = Mutex<[[String]]>([])

  func run(_ invocation: Invocation) async throws -> ProcessOutput {
    let argv = [invocation.executable] + invocation.arguments
    if argv.contains("--generate-cli-skeleton") {
      probes.withLock { $0.append(argv) }
      // The parameters the tool looks for, as the operation's skeleton lists them.
      let known = (AWSCLI.s3StateRequirements + AWSCLI.stepRequirements)
        .filter { argv.starts(with: ["aws", $0.service, $0.operation]) }
        .flatMap(\.parameters).map(\.name)
      let lacking = lacks.withLock { $0 }
      return ok(
        Dictionary(
          (["Bucket", "Key"] + known).filter { !lacking.contains($0) }.map { ($0, "") },
          uniquingKeysWith: { first, _ in first }))
    }
    if argv.count > 1, argv[1] == "--version", let version = version.withLock({ $0 }) {
      return ProcessOutput(
        termination: .exited(0), standardOutput: Data((version + "\n").utf8),
        standardError: Data())
    }
    func value(_ option: String) -> String? {
      argv.firstIndex(of: option).flatMap { $0 + 1 < argv.count ? argv[$0 + 1] : nil }
    }
    var mode: Int?
    if let body = value("--body") { mode = try? permissions(of: body) }
    calls.withLock { $0.append(Call(argv: argv, bodyMode: mode)) }
    guard argv.starts(with: ["aws", "s3api"]), argv.count > 2, value("--bucket") == "state-bucket",
      value("--region") == "ap-northeast-2"
    else {
      return failure("NoSuchBucket", "the fake holds only state-bucket in ap-northeast-2")
    }
    let key = value("--key") ?? ""
    if interruptNext.withLock({ name in
      defer { if name == argv[2] { name = nil } }
      return name == argv[2]
    }) {
      return ProcessOutput(termination: .signaled(2), standardOutput: Data(), standardError: Data())
    }
    switch argv[2] {
    case "get-object":
      guard let object = objects.withLock({ $0[key] }) else {
        return failure("NoSuchKey", "no such key")
      }
      // The target file is the positional argument after the key's value.
      let target = argv[(argv.firstIndex(of: key)! + 1)]
      _ = FileManager.default.createFile(atPath: target, contents: object.data)
      return ok(["ETag": object.eTag])
    case "put-object":
      let data = FileManager.default.contents(atPath: value("--body") ?? "") ?? Data()
      let number = counter.withLock { count -> Int in
        count += 1
        return count
      }
      let eTag = "\"etag-\(number)\""
      return objects.withLock { objects in
        if value("--if-none-match") == "*", objects[key] != nil { return precondition() }
        if let match = value("--if-match"), objects[key]?.eTag != match { return precondition() }
        objects[key] = Object(data: data, eTag: eTag)
        return ok(["ETag": eTag])
      }
    case "delete-object":
      return objects.withLock { objects in
        if let match = value("--if-match"), let object = objects[key], object.eTag != match {
          return precondition()
        }
        objects[key] = nil
        return ok([:])
      }
    case "list-objects-v2":
      let prefix = value("--prefix") ?? ""
      let keys = objects.withLock { Array($0.keys) }.filter { $0.hasPrefix(prefix) }.sorted()
      return ProcessOutput(
        termination: .exited(0), standardOutput: try JSONSerialization.data(withJSONObject: keys),
        standardError: Data())
    case "get-bucket-versioning":
      return ok(versioning.withLock { $0 }.map { ["Status": $0] } ?? [:])
    default:
      return failure("InvalidAction", argv[2])
    }
  }

  func runPipeline(_ producer: Invocation, into consumer: Invocation) async throws -> PipelineOutput
  {
    XCTFail("no pipeline expected")
    throw ProcessLaunchError.executableNotFound(producer.executable)
  }

  private func ok(_ object: [String: String]) -> ProcessOutput {
    ProcessOutput(
      termination: .exited(0),
      standardOutput: (try? JSONSerialization.data(withJSONObject: object)) ?? Data(),
      standardError: Data())
  }

  private func failure(_ code: String, _ message: String) -> ProcessOutput {
    ProcessOutput(
      termination: .exited(255), standardOutput: Data(),
      standardError: Data(
        "\nAn error occurred (\(code)) when calling the operation: \(message)\n".utf8))
  }

  private func precondition() -> ProcessOutput {
    failure("PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
  }

  func operations(_ name: String) -> [Call] {
    calls.withLock { $0 }.filter { $0.argv.count > 2 && $0.argv[2] == name }
  }
}

final class S3StateStoreTests: XCTestCase {
  let root = S3Location(bucket: "state-bucket", prefix: "runbook/unisync")

  func store(_ s3: FakeS3, lease: Double = 120) throws -> S3StateStore {
    S3StateStore(
      root: root, runner: s3,
      aws: AWSSettings(region: "ap-northeast-2", endpointURL: "http://127.0.0.1:1"),
      logsDirectory: try makeScratchFolder().appendingPathComponent("logs").path,
      leaseSeconds: lease)
  }

  func testLocationsParseAndRejectWhatIsNotABucket() throws {
    XCTAssertEqual(
      try S3Location.parse("s3://team-state/prod/unisync/").get(),
      S3Location(bucket: "team-state", prefix: "prod/unisync"))
    XCTAssertEqual(
      try S3Location.parse("s3://team-state").get().appending("runbook/x").description,
      "s3://team-state/runbook/x")
    for bad in [
      "team-state/prod", "s3://", "s3://Team_State/x", "s3://ok-bucket/a b", "file:///tmp",
    ] {
      XCTAssertThrowsError(try S3Location.parse(bad).get(), bad)
    }
  }

  /// First write `--if-none-match *`, then `--if-match` the ETag written; the body goes through a
  /// 0600 file (never the argv) and has exactly the bytes of a local state.json.
  func testSavesAreConditionalAndTheBytesAreTheLocalFormat() async throws {
    let s3 = FakeS3()
    let state = try store(s3)
    let none = try await state.load()
    XCTAssertNil(none)
    var checkpoint = Checkpoint(deployment: "unisync", region: "ap-northeast-2")
    checkpoint.exports["VPC_ID"] = "vpc-1"
    try await state.save(checkpoint)
    checkpoint.serial += 1
    try await state.save(checkpoint)

    let puts = s3.operations("put-object")
    XCTAssertEqual(puts.count, 2)
    XCTAssertEqual(puts[0].argv.firstIndex(of: "--if-none-match").map { puts[0].argv[$0 + 1] }, "*")
    XCTAssertNil(puts[0].argv.firstIndex(of: "--if-match"))
    XCTAssertEqual(
      puts[1].argv.firstIndex(of: "--if-match").map { puts[1].argv[$0 + 1] }, "\"etag-1\"")
    for put in puts {
      XCTAssertEqual(put.bodyMode, 0o600)
      XCTAssertFalse(
        put.argv.joined(separator: " ").contains(checkpoint.lineage),
        "the contents never go in argv")
      XCTAssertEqual(
        Array(put.argv.suffix(4)),
        ["--region", "ap-northeast-2", "--endpoint-url", "http://127.0.0.1:1"])
    }
    let local = StateDirectory(path: try makeScratchFolder().appendingPathComponent("state").path)
    try local.prepare()
    try local.save(checkpoint)
    let stored = s3.objects.withLock { $0["runbook/unisync/state.json"]?.data }
    XCTAssertEqual(stored, FileManager.default.contents(atPath: local.stateFile))
    let reloaded = try await store(s3).load()
    XCTAssertEqual(reloaded, checkpoint)
  }

  /// Someone writes state.json between this store's read and its write: StateConflictError, and
  /// their version stays.
  func testAWriteOverAVersionItDidNotReadIsRefused() async throws {
    let s3 = FakeS3()
    let state = try store(s3)
    let checkpoint = Checkpoint(deployment: "unisync", region: "ap-northeast-2")
    try await state.save(checkpoint)
    _ = try await state.load()
    let other = try store(s3)
    var theirs = try await other.load()!
    theirs.serial = 41
    try await other.save(theirs)
    let before = s3.objects.withLock { $0["runbook/unisync/state.json"]?.data }

    do {
      try await state.save(checkpoint)
      XCTFail("the write went through")
    } catch let error as StateConflictError {
      XCTAssertEqual(error.object, "s3://state-bucket/runbook/unisync/state.json")
      XCTAssertTrue(error.detail.hasPrefix("PreconditionFailed"), error.detail)
    }
    XCTAssertEqual(s3.objects.withLock { $0["runbook/unisync/state.json"]?.data }, before)
    // A store that never read it may only create it.
    do {
      try await store(s3).save(checkpoint)
      XCTFail("an unread state.json was overwritten")
    } catch is StateConflictError {}
  }

  /// The second taker gets LockHeldError naming the holder; an expired lease says so; the lease
  /// is renewed with `--if-match` while held; release deletes only this run's lock.
  func testLockIsExclusiveLeasedRenewedAndReleased() async throws {
    let s3 = FakeS3()
    let first = try store(s3, lease: 1)
    let lock = try await first.acquireLock(command: "runbook run")
    do {
      _ = try await store(s3).acquireLock(command: "runbook run sqs")
      XCTFail("two runs hold the lock")
    } catch let error as LockHeldError {
      XCTAssertEqual(error.holder?.pid, getpid())
      XCTAssertEqual(error.holder?.command, "runbook run")
      XCTAssertNotNil(error.holder?.user)
      XCTAssertTrue(
        error.description.contains("another run holds the lock (pid \(getpid()) on "),
        error.description)
      XCTAssertTrue(error.description.contains("lease renewed until"), error.description)
    }
    // Renewed every third of the 1 s lease: waited for, not slept for (a loaded machine runs
    // the renewal late, and that is no failure).
    try await waitFor("the lease is renewed while the lock is held") {
      s3.operations("put-object").contains { $0.argv.contains("--if-match") }
    }
    await lock.release()
    XCTAssertNil(s3.objects.withLock { $0["runbook/unisync/lock"] })
    XCTAssertEqual(s3.operations("delete-object").last?.argv.contains("--if-match"), true)

    var expired = LockRecord(
      pid: 7, host: "ci-1", startedAt: "2026-01-01T00:00:00.000", command: "runbook run", user: "ci"
    )
    expired.expiresAt = timestamp(Date().addingTimeInterval(-60))
    XCTAssertTrue(expired.expired())
    let description = LockHeldError(path: "s3://b/p/lock", holder: expired).description
    XCTAssertTrue(description.contains("pid 7 on ci-1 as ci"), description)
    XCTAssertTrue(description.contains("its lease expired at \(expired.expiresAt!)"), description)
    XCTAssertTrue(description.contains("'runbook unlock'"), description)
    expired.expiresAt = timestamp(Date().addingTimeInterval(60))
    XCTAssertFalse(expired.expired())
  }

  /// Entries are objects created with `--if-none-match *`; an intent is known from its key alone,
  /// a result's value is read from its body; a reset hides the step's earlier entries.
  func testJournalEntriesAreObjectsAndResetsHideEarlierOnes() async throws {
    let s3 = FakeS3()
    let journal = try store(s3).journal
    try await journal.append(
      JournalEntry(
        lineage: "l1", event: .intent, action: "sqs/queue-a", command: "aws sqs create-queue"))
    try await journal.append(
      JournalEntry(
        lineage: "l1", event: .result, action: "sqs/queue-a", value: "url-a", outcome: .created))
    try await journal.append(JournalEntry(lineage: "l1", event: .intent, action: "sqs/queue-b"))
    try await journal.append(JournalEntry(lineage: "l1", event: .intent, action: "network/vpc"))
    try await journal.append(JournalEntry(lineage: "l1", event: .reset, action: "network"))
    XCTAssertTrue(s3.operations("put-object").allSatisfy { $0.argv.contains("--if-none-match") })

    let fresh = try store(s3).journal
    let gets = s3.operations("get-object").count
    let b = try await fresh.latest(lineage: "l1", action: "sqs/queue-b")
    XCTAssertEqual(b?.event, .intent)
    XCTAssertEqual(s3.operations("get-object").count, gets, "an intent is known from its key")
    let a = try await fresh.latest(lineage: "l1", action: "sqs/queue-a")
    XCTAssertEqual(a?.event, .result)
    XCTAssertEqual(a?.value, "url-a")
    XCTAssertEqual(a?.outcome, .created)
    let vpc = try await fresh.latest(lineage: "l1", action: "network/vpc")
    XCTAssertNil(vpc)
    let other = try await fresh.latest(lineage: "l2", action: "sqs/queue-a")
    XCTAssertNil(other)
    XCTAssertEqual(s3.operations("list-objects-v2").count, 3, "one listing per lineage and store")
  }

  /// `unlock` shows the holder and deletes the lock only after the deployment name is typed.
  func testUnlockAsksForTheDeploymentName() async throws {
    let s3 = FakeS3()
    let record = LockRecord(
      pid: 4242, host: "laptop-7", startedAt: "2026-01-01T00:00:00.000", command: "runbook run",
      user: "kim",
      expiresAt: "2026-01-01T00:02:00.000")
    s3.objects.withLock {
      $0["runbook/unisync/lock"] = FakeS3.Object(
        data: S3StateStore.encodeLock(record), eTag: "\"lock-1\"")
    }
    let folder = try makeScratchFolder().path
    func unlock(answer: String) async -> (Int32, String) {
      let output = BufferOutput()
      let frontend = Frontend(
        environment: Frontend.Environment(
          output: output, errors: output, inputIsTerminal: true,
          variables: ["TERM": "dumb", "PATH": stubToolPath],
          readLine: { answer }, workingDirectory: packageRoot.path),
        runner: s3)
      let status = await frontend.run(
        [
          "-c", "runbooks/local.json", "--state-dir", folder, "--state", "s3://state-bucket",
          "unlock",
        ])
      return (status, output.text)
    }
    let (refused, refusedText) = await unlock(answer: "unisync-prod")
    XCTAssertEqual(refused, ExitStatus.interrupted, refusedText)
    XCTAssertTrue(refusedText.contains("held by pid 4242 on laptop-7 as kim"), refusedText)
    XCTAssertTrue(refusedText.contains("its lease expired at 2026-01-01T00:02:00.000"), refusedText)
    XCTAssertTrue(refusedText.contains("Type the deployment name (unisync)"), refusedText)
    XCTAssertNotNil(s3.objects.withLock { $0["runbook/unisync/lock"] })
    XCTAssertTrue(s3.operations("delete-object").isEmpty)

    let (status, text) = await unlock(answer: "unisync")
    XCTAssertEqual(status, ExitStatus.success, text)
    XCTAssertTrue(text.contains("unlocked s3://state-bucket/runbook/unisync"), text)
    XCTAssertNil(s3.objects.withLock { $0["runbook/unisync/lock"] })
    XCTAssertEqual(
      s3.operations("delete-object").first?.argv.contains("\"lock-1\""), true,
      "only the version shown")
  }
  /// Runs `runbook -c local.json --state-dir FOLDER --state s3://state-bucket ARGS` against the fake.
  func frontend(_ s3: FakeS3, folder: String, _ arguments: [String]) async -> (Int32, String) {
    let output = BufferOutput()
    let frontend = Frontend(
      environment: Frontend.Environment(
        output: output, errors: output, inputIsTerminal: false,
        variables: ["TERM": "dumb", "PATH": stubToolPath], workingDirectory: packageRoot.path),
      runner: s3)
    let status = await frontend.run(
      ["-c", "runbooks/local.json", "--state-dir", folder, "--state", "s3://state-bucket"]
        + arguments)
    return (status, output.text)
  }

  /// `state push` copies the local checkpoint (same bytes) and the journal entry that counts;
  /// `state pull` brings them back into an empty folder; another lineage is refused both ways.
  func testStatePushAndPullCopyCheckpointAndJournalAndRefuseAnotherLineage() async throws {
    let s3 = FakeS3()
    let folder = try makeScratchFolder().appendingPathComponent("state").path
    let local = StateDirectory(path: folder)
    try local.prepare()
    var checkpoint = Checkpoint(deployment: "unisync", region: "ap-northeast-2")
    checkpoint.account = "123456789012"
    checkpoint.exports["VPC_ID"] = "vpc-1"
    checkpoint.serial = 7
    try local.save(checkpoint)
    try Journal(path: local.journalFile).append(
      JournalEntry(
        lineage: checkpoint.lineage, event: .intent, action: "network/subnet-public-2a",
        command: "aws ec2"))

    let (pushed, pushText) = await frontend(s3, folder: folder, ["state", "push"])
    XCTAssertEqual(pushed, ExitStatus.success, pushText)
    XCTAssertEqual(
      s3.objects.withLock { $0["runbook/unisync/state.json"]?.data },
      FileManager.default.contents(atPath: local.stateFile))
    let remote = try store(s3)
    let intent = try await remote.journal.latest(
      lineage: checkpoint.lineage, action: "network/subnet-public-2a")
    XCTAssertEqual(intent?.event, .intent)
    XCTAssertNil(s3.objects.withLock { $0["runbook/unisync/lock"] }, "both locks are released")

    let other = try makeScratchFolder().appendingPathComponent("pulled").path
    let (pulled, pullText) = await frontend(s3, folder: other, ["state", "pull"])
    XCTAssertEqual(pulled, ExitStatus.success, pullText)
    let pulledDirectory = StateDirectory(path: other)
    XCTAssertEqual(
      FileManager.default.contents(atPath: pulledDirectory.stateFile),
      FileManager.default.contents(atPath: local.stateFile))
    XCTAssertEqual(
      try Journal(path: pulledDirectory.journalFile).latest(lineage: checkpoint.lineage)[
        "network/subnet-public-2a"]?.event,
      .intent)

    // A local checkpoint of another lineage is never pushed over S3's, nor S3's pulled over it.
    let stranger = try makeScratchFolder().appendingPathComponent("stranger").path
    let strangerDirectory = StateDirectory(path: stranger)
    try strangerDirectory.prepare()
    try strangerDirectory.save(Checkpoint(deployment: "unisync", region: "ap-northeast-2"))
    let before = s3.objects.withLock { $0["runbook/unisync/state.json"]?.data }
    let localBefore = FileManager.default.contents(atPath: strangerDirectory.stateFile)
    for direction in ["push", "pull"] {
      let (status, text) = await frontend(s3, folder: stranger, ["state", direction])
      XCTAssertEqual(status, ExitStatus.usage, text)
      XCTAssertTrue(text.contains("holds another lineage"), text)
    }
    XCTAssertEqual(s3.objects.withLock { $0["runbook/unisync/state.json"]?.data }, before)
    XCTAssertEqual(FileManager.default.contents(atPath: strangerDirectory.stateFile), localBefore)
  }

  /// doctor warns when the bucket keeps no old versions, and is content when it does.
  func testDoctorWarnsWhenBucketVersioningIsOff() async throws {
    let s3 = FakeS3()
    let folder = try makeScratchFolder().path
    let (_, off) = await frontend(s3, folder: folder, ["doctor"])
    let offLine =
      off.split(separator: "\n").first { $0.contains("state (S3)") }.map(String.init) ?? off
    XCTAssertTrue(offLine.hasPrefix("WARN"), offLine)
    XCTAssertTrue(offLine.contains("bucket versioning is off"), offLine)
    XCTAssertTrue(off.contains("put-bucket-versioning --bucket state-bucket"), off)
    s3.versioning.withLock { $0 = "Enabled" }
    let (_, on) = await frontend(s3, folder: folder, ["doctor"])
    let onLine =
      on.split(separator: "\n").first { $0.contains("state (S3)") }.map(String.init) ?? on
    XCTAssertTrue(onLine.hasPrefix("OK"), onLine)
  }
  /// Each deployment gets its own state by default: `.runbook/<deployment>` locally,
  /// `runbook/<deployment>` under a bucket named without a prefix; an explicit prefix is kept.
  func testDefaultStateLocationsIncludeTheDeploymentName() throws {
    let folder = try makeScratchFolder().path
    let config = packageRoot.appendingPathComponent("runbooks/local.json").path
    func context(_ arguments: [String]) throws -> Context {
      let environment = Frontend.Environment(
        output: BufferOutput(), errors: BufferOutput(), inputIsTerminal: false, variables: [:],
        workingDirectory: folder)
      return try Context(
        parsed: try parseCommandLine(["-c", config] + arguments + ["status"]),
        environment: environment)
    }
    let local = try context([])
    XCTAssertEqual(local.stateDirectory, folder + "/.runbook/unisync")
    XCTAssertNil(local.s3State)
    XCTAssertEqual(
      try context(["--state", "s3://team-state"]).s3State?.description,
      "s3://team-state/runbook/unisync")
    XCTAssertEqual(
      try context(["--state", "s3://team-state/prod"]).s3State?.description, "s3://team-state/prod")
    XCTAssertThrowsError(try context(["--state", "/tmp/state"]))
    // A folder holding the single checkpoint of earlier versions keeps being used.
    let legacy = StateDirectory(path: folder + "/.runbook")
    try legacy.prepare()
    try legacy.save(Checkpoint(deployment: "unisync", region: "ap-northeast-2"))
    XCTAssertEqual(try context([]).stateDirectory, folder + "/.runbook")
  }
  /// The configuration's `state` key: an s3:// location, or refused.
  func testConfigurationStateKey() throws {
    let folder = try makeScratchFolder()
    var config =
      try JSONSerialization.jsonObject(
        with: Data(contentsOf: packageRoot.appendingPathComponent("runbooks/local.json")))
      as! [String: Any]
    let runbooks = packageRoot.appendingPathComponent("runbooks")
    config["services"] = (config["services"] as! [[String: Any]]).map { service in
      var service = service
      for key in ["buildContext", "taskDefinition"] {
        service[key] = runbooks.appendingPathComponent(service[key] as! String).standardized.path
      }
      return service
    }
    func load(_ state: String) throws -> Deployment {
      config["state"] = state
      let path = folder.appendingPathComponent("config.json")
      try JSONSerialization.data(withJSONObject: config).write(to: path)
      return try Deployment.load(from: path.path)
    }
    XCTAssertEqual(try load("s3://team-state/unisync").state, "s3://team-state/unisync")
    XCTAssertThrowsError(try load("team-state/unisync")) { error in
      XCTAssertTrue("\(error)".contains("state"), "\(error)")
    }
  }
  /// `status`, `env` and `reset` read and write the S3 state as they do a local folder.
  func testStatusEnvAndResetWorkOnS3State() async throws {
    let s3 = FakeS3()
    let remote = try store(s3)
    var checkpoint = Checkpoint(deployment: "unisync", region: "ap-northeast-2")
    checkpoint.account = "123456789012"
    checkpoint.actions["sqs/queue-a"] = ActionRecord(
      status: .done, outcome: .created, value: "url-a", export: "QUEUE_URL_A")
    checkpoint.exports["QUEUE_URL_A"] = "url-a"
    try await remote.save(checkpoint)
    let folder = try makeScratchFolder().path

    let (envStatus, env) = await frontend(s3, folder: folder, ["env"])
    XCTAssertEqual(envStatus, ExitStatus.success, env)
    XCTAssertEqual(env, "export QUEUE_URL_A='url-a'\n")
    let (statusStatus, status) = await frontend(s3, folder: folder, ["status"])
    XCTAssertEqual(statusStatus, ExitStatus.success, status)
    XCTAssertTrue(status.contains("serial 0"), status)

    let (resetStatus, reset) = await frontend(s3, folder: folder, ["reset", "sqs"])
    XCTAssertEqual(resetStatus, ExitStatus.success, reset)
    let after = try await store(s3).load()
    XCTAssertEqual(after?.actions, [:])
    XCTAssertEqual(after?.exports, [:])
    XCTAssertEqual(after?.serial, 1)
    let keys = s3.objects.withLock { Array($0.keys) }
    XCTAssertTrue(
      keys.contains {
        $0.hasPrefix("runbook/unisync/journal/\(checkpoint.lineage)/") && $0.hasSuffix(".reset.sqs")
      }, "\(keys)")
    XCTAssertFalse(keys.contains("runbook/unisync/lock"))
    XCTAssertFalse(
      FileManager.default.fileExists(atPath: folder + "/state.json"), "nothing is kept locally")
  }
  /// A journal object that cannot be decoded, whose result the run would replay, stops the run
  /// before its first write (no lock taken, nothing put) and before it asks AWS anything else:
  /// exit 2, naming the object. Bodies the run does not need are not read.
  func testAJournalObjectThatCannotBeDecodedStopsTheRunBeforeAnyWrite() async throws {
    let s3 = FakeS3()
    let remote = try store(s3)
    var checkpoint = Checkpoint(deployment: "unisync", region: "ap-northeast-2")
    checkpoint.account = "123456789012"
    let queues = SQSStep().actions(for: try localDeployment()).map { "sqs/\($0.name)" }
    checkpoint.actions[queues[1]] = ActionRecord(
      status: .done, outcome: .created, value: "url-1", export: nil)
    try await remote.save(checkpoint)
    let journal = remote.journal
    for action in queues[0...1] {
      try await journal.append(
        JournalEntry(lineage: checkpoint.lineage, event: .intent, action: action))
      try await journal.append(
        JournalEntry(lineage: checkpoint.lineage, event: .result, action: action, value: "url"))
    }
    // Both results damaged; only the first one is needed (the second action is done).
    let damaged = s3.objects.withLock { objects in
      let keys = objects.keys.filter { $0.contains(".result.") }.sorted()
      for key in keys { objects[key]?.data = Data("{\"action\": \"sqs/".utf8) }
      return keys
    }
    XCTAssertEqual(damaged.count, 2)
    s3.calls.withLock { $0 = [] }
    let folder = try makeScratchFolder().path

    let (status, output) = await frontend(s3, folder: folder, ["run", "sqs", "--yes"])
    XCTAssertEqual(status, ExitStatus.usage, output)
    XCTAssertEqual(output.split(separator: "\n").count, 1, output)
    XCTAssertTrue(
      output.contains(
        "s3://state-bucket/runbook/unisync/journal/\(checkpoint.lineage)/\(damaged[0].split(separator: "/").last!): is not a journal entry (invalid JSON in 16 bytes); nothing was run"
      ), output)
    XCTAssertEqual(s3.operations("put-object").count, 0, "nothing was written")
    XCTAssertEqual(
      s3.operations("get-object").compactMap { call in
        call.argv.firstIndex(of: "--key").map { call.argv[$0 + 1] }
      }.filter { $0.contains("/journal/") }, [damaged[0]], "only the body the run needs is read")
    XCTAssertTrue(
      s3.calls.withLock { $0 }.allSatisfy { $0.argv.starts(with: ["aws", "s3api"]) },
      "no other aws call was made")
  }

  /// Ctrl-C kills the aws child of a state write: the run is interrupted (exit 130), not broken.
  func testAStateCallKilledByCtrlCIsAnInterruption() async throws {
    let s3 = FakeS3()
    let state = try store(s3)
    s3.interruptNext.withLock { $0 = "put-object" }
    do {
      try await state.save(Checkpoint(deployment: "unisync", region: "ap-northeast-2"))
      XCTFail("the save went through")
    } catch let error as Interrupted {
      XCTAssertTrue(error.reason.contains("put-object"), error.reason)
    }
  }
  /// A lock that someone unlocked and another run took while this run held it: the renewal
  /// notices, nothing more is written, and the other run's lock is left alone.
  func testALockTakenAwayStopsEveryFurtherWrite() async throws {
    let s3 = FakeS3()
    let state = try store(s3, lease: 1)
    _ = try await state.load()
    let lock = try await state.acquireLock(command: "runbook run")
    s3.objects.withLock {
      $0["runbook/unisync/lock"] = FakeS3.Object(data: Data("{}".utf8), eTag: "\"someone-else\"")
    }
    try await waitFor("the renewal notices the lock is not this run's any more") {
      state.lockLost.withLock { $0 } != nil
    }
    do {
      try await state.save(Checkpoint(deployment: "unisync", region: "ap-northeast-2"))
      XCTFail("a run whose lock was taken wrote the checkpoint")
    } catch let error as StateConflictError {
      XCTAssertEqual(error.object, "s3://state-bucket/runbook/unisync/lock")
    }
    do {
      try await state.journal.append(
        JournalEntry(lineage: "l1", event: .intent, action: "sqs/queue-a"))
      XCTFail("a run whose lock was taken wrote the journal")
    } catch is StateConflictError {}
    await lock.release()
    XCTAssertEqual(s3.objects.withLock { $0["runbook/unisync/lock"]?.eTag }, "\"someone-else\"")
    XCTAssertNil(s3.objects.withLock { $0["runbook/unisync/state.json"] })
  }
}
