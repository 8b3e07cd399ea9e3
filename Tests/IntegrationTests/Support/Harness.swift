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

#if canImport(FoundationNetworking)
  import FoundationNetworking
#endif

/// The repository's root folder.
let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
  .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  .deletingLastPathComponent()

/// What one run of the tool produced.
struct ToolRun {
  var status: Int32
  var signaled: Bool
  var stdout: String
  var stderr: String

  var summary: String {
    "status \(status)\(signaled ? " (signal)" : "")\nstdout:\n\(stdout)\nstderr:\n\(stderr)"
  }
}

enum HarnessError: Error, CustomStringConvertible {
  case missing(String)
  var description: String {
    switch self {
    case .missing(let what): what
    }
  }
}

/// The local AWS emulator started by `make test` (scripts/local-aws.sh). Tests fail, never skip, without it.
enum Emulator {
  /// The emulator this test process uses. `make test` may start several (RUNBOOK_TEST_ENDPOINTS,
  /// one per parallel test worker): each test process holds an flock on one of them for its whole
  /// life, so two processes never share an emulator (tests reset it).
  static func endpoint() throws -> String {
    if let claimed = claimed { return claimed }
    guard let url = ProcessInfo.processInfo.environment["RUNBOOK_TEST_ENDPOINT"], !url.isEmpty
    else {
      throw HarnessError.missing(
        "RUNBOOK_TEST_ENDPOINT is not set: run the integration tests through 'make test', which starts the emulator"
      )
    }
    return url
  }

  private static let claimed: String? = {
    let environment = ProcessInfo.processInfo.environment
    guard let list = environment["RUNBOOK_TEST_ENDPOINTS"],
      let directory = environment["RUNBOOK_TEST_LOCK_DIR"]
    else { return nil }
    let endpoints = list.split(separator: " ").map(String.init)
    guard !endpoints.isEmpty else { return nil }
    let descriptors = endpoints.indices.map {
      open("\(directory)/emulator-\($0).lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
    }
    for (index, fd) in descriptors.enumerated() where fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 {
      return endpoints[index]
    }
    // Every emulator is taken: wait for one (the lock is released when its process ends).
    let index = Int(getpid()) % endpoints.count
    flock(descriptors[index], LOCK_EX)
    return endpoints[index]
  }()

  /// Forgets every resource in the emulator.
  static func reset() throws {
    let url = URL(string: try endpoint() + "/moto-api/reset")!
    var request = URLRequest(url: url)
    request.httpMethod = "POST"
    let done = DispatchSemaphore(value: 0)
    final class Box: @unchecked Sendable { var error: Error? }
    let box = Box()
    URLSession.shared.dataTask(with: request) { _, response, error in
      if let error {
        box.error = error
      } else if (response as? HTTPURLResponse)?.statusCode != 200 {
        box.error = HarnessError.missing("emulator reset answered \(String(describing: response))")
      }
      done.signal()
    }.resume()
    done.wait()
    if let error = box.error { throw error }
  }
}

/// A scratch folder with its own configuration and state directory, and the tool run inside it.
final class Workspace {
  let directory: URL
  let stateDirectory: String
  let configPath: String
  let endpoint: String
  /// Extra environment for every run of the tool.
  var environment: [String: String] = [:]
  /// Every run of the tool (``run(_:environment:input:endpoint:)``, ``runRaw(_:environment:input:)``)
  /// in this workspace, in order.
  private(set) var transcript: [ToolRun] = []
  /// The output files of every run started in the background (``RunningTool``), in order.
  fileprivate(set) var backgroundOutputs: [URL] = []

  /// - Parameters:
  ///   - strict: every run and aws call goes through the strict layer in front of this process's
  ///     emulator (the test configures its behaviours), whatever RUNBOOK_AWS_STRICT says.
  ///   - configure: edits the local configuration (as a JSON dictionary) before it is written.
  init(
    name: String = #function, strict: Bool = false,
    configure: (inout [String: Any]) -> Void = { _ in }
  ) throws {
    endpoint = strict ? try StrictLayer.forThisProcess().url : try Emulator.endpoint()
    directory = FileManager.default.temporaryDirectory.appendingPathComponent(
      "runbook-test-\(name.filter { $0.isLetter || $0.isNumber })-\(UUID().uuidString.prefix(8))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    stateDirectory = directory.appendingPathComponent("state").path
    let source = repositoryRoot.appendingPathComponent("runbooks/local.json")
    var config = try JSONSerialization.jsonObject(with: Data(contentsOf: source)) as! [String: Any]
    // Relative paths in the configuration keep pointing into the repository.
    func inRepository(_ path: String) -> String {
      repositoryRoot.appendingPathComponent("runbooks").appendingPathComponent(path).standardized
        .path
    }
    config["services"] = (config["services"] as? [[String: Any]])?.map { service in
      var service = service
      for key in ["buildContext", "taskDefinition"] {
        if let path = service[key] as? String { service[key] = inRepository(path) }
      }
      return service
    }
    if var lambda = config["lambda"] as? [String: Any], let source = lambda["source"] as? String {
      lambda["source"] = inRepository(source)
      config["lambda"] = lambda
    }
    // The strict layer's delays are scaled to seconds (0.5-3 s) while the tool's polls keep
    // AWS's lengths (a DB instance every 15 s, a load balancer every 10 s): at full length each
    // wait would cost a whole poll. A test that measures the pauses themselves sets 100 again.
    var operations = config["operations"] as? [String: Any] ?? [:]
    operations["pausePercent"] = operations["pausePercent"] ?? Self.testPausePercent
    config["operations"] = operations
    configure(&config)
    configPath = directory.appendingPathComponent("config.json").path
    try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
      .write(to: URL(fileURLWithPath: configPath))
  }

  /// `operations.pausePercent` of every workspace unless its configuration says otherwise.
  static let testPausePercent = 20

  deinit { try? FileManager.default.removeItem(at: directory) }

  /// The built tool.
  static func binary() throws -> String {
    let path =
      ProcessInfo.processInfo.environment["RUNBOOK_TEST_BIN"]
      ?? repositoryRoot.appendingPathComponent(".build/debug/runbook").path
    guard FileManager.default.isExecutableFile(atPath: path) else {
      throw HarnessError.missing("the runbook binary is not built at \(path) (run 'swift build')")
    }
    return path
  }

  /// PATH with the guarding aws shim first (every aws call must carry a loopback --endpoint-url).
  static var shimmedPath: String {
    repositoryRoot.appendingPathComponent("Tests/Fixtures/bin").path + ":"
      + (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")
  }

  /// Runs `runbook --config … --state-dir … --endpoint-url … ARGS`.
  func run(
    _ arguments: [String], environment extra: [String: String] = [:], input: Data? = nil,
    endpoint: String? = nil
  )
    async throws -> ToolRun
  {
    let global = [
      "--config", configPath, "--state-dir", stateDirectory, "--endpoint-url",
      endpoint ?? self.endpoint,
    ]
    return try await runRaw(global + arguments, environment: extra, input: input)
  }

  /// Runs the tool with exactly these arguments.
  func runRaw(_ arguments: [String], environment extra: [String: String] = [:], input: Data? = nil)
    async throws
    -> ToolRun
  {
    var variables = [
      "PATH": Self.shimmedPath, "NO_COLOR": "1", "AWS_ACCESS_KEY_ID": "testing",
      "AWS_SECRET_ACCESS_KEY": "testing", "AWS_CONFIG_FILE": "/dev/null",
      "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
    ]
    variables.merge(environment) { $1 }
    variables.merge(extra) { $1 }
    let invocation = Invocation(
      executable: try Self.binary(), arguments: arguments, standardInput: input,
      environment: variables,
      workingDirectory: directory.path)
    let output = try await ProcessRunner().run(invocation)
    let run: ToolRun
    switch output.termination {
    case .exited(let code):
      run = ToolRun(
        status: code, signaled: false, stdout: output.stdoutText, stderr: output.stderrText)
    case .signaled(let signal):
      run = ToolRun(
        status: signal, signaled: true, stdout: output.stdoutText, stderr: output.stderrText)
    }
    transcript.append(run)
    return run
  }

  /// Runs the real aws CLI (through the shim) against the emulator and parses its JSON output.
  func aws(_ arguments: [String]) async throws -> Any { try await awsOutput(endpoint, arguments) }

  /// A temporary folder of the workspace's own, given to every run of the tool as `TMPDIR`
  /// (made on first use), so that what runs leave there can be looked at, all of it.
  func privateTemporaryDirectory() throws -> String {
    let path = directory.appendingPathComponent("tmp").path
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    environment["TMPDIR"] = path
    return path
  }

  /// The checkpoint file's bytes (nil when absent).
  var stateBytes: Data? { FileManager.default.contents(atPath: stateDirectory + "/state.json") }

  func checkpoint() throws -> Checkpoint {
    guard let data = stateBytes else {
      throw HarnessError.missing("no checkpoint in \(stateDirectory)")
    }
    return try JSONDecoder().decode(Checkpoint.self, from: data)
  }

  /// Every file of the state directory with its bytes (to prove nothing changed).
  func stateSnapshot() -> [String: Data] {
    var files: [String: Data] = [:]
    let enumerator = FileManager.default.enumerator(atPath: stateDirectory)
    while let name = enumerator?.nextObject() as? String {
      let path = stateDirectory + "/" + name
      var isDirectory: ObjCBool = false
      if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory),
        !isDirectory.boolValue,
        let data = FileManager.default.contents(atPath: path)
      {
        files[name] = data
      }
    }
    return files
  }
}

/// Runs the real aws CLI (through the shim) against the emulator at `endpoint`; its parsed JSON
/// output (an empty object when it printed nothing).
func awsOutput(_ endpoint: String, _ arguments: [String]) async throws -> Any {
  let invocation = Invocation(
    executable: "aws",
    arguments: arguments + [
      "--region", "ap-northeast-2", "--endpoint-url", endpoint, "--output", "json",
    ],
    environment: [
      "PATH": Workspace.shimmedPath, "AWS_ACCESS_KEY_ID": "testing",
      "AWS_SECRET_ACCESS_KEY": "testing",
      "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    ])
  let output = try await ProcessRunner().run(invocation)
  guard output.succeeded else {
    throw HarnessError.missing(
      "aws \(arguments.joined(separator: " ")) failed: \(output.stderrText)")
  }
  return try JSONSerialization.jsonObject(
    with: output.standardOutput.isEmpty ? Data("{}".utf8) : output.standardOutput)
}

/// Names of the resources of the network step that exist in the emulator, by kind (deleted ones excluded).
func networkInventory(_ workspace: Workspace) async throws -> [String: [String]] {
  func items(_ result: Any, _ key: String) -> [[String: Any]] {
    ((result as? [String: Any])?[key] as? [[String: Any]]) ?? []
  }
  func name(_ item: [String: Any]) -> String {
    let tags = item["Tags"] as? [[String: Any]] ?? []
    return tags.first { $0["Key"] as? String == "Name" }?["Value"] as? String ?? "(untagged)"
  }
  var inventory: [String: [String]] = [:]
  let vpcs = items(try await workspace.aws(["ec2", "describe-vpcs"]), "Vpcs").filter {
    $0["IsDefault"] as? Bool != true
  }
  inventory["vpc"] = vpcs.map(name).sorted()
  let vpcIds = Set(vpcs.compactMap { $0["VpcId"] as? String })
  inventory["subnet"] = items(try await workspace.aws(["ec2", "describe-subnets"]), "Subnets")
    .filter { vpcIds.contains($0["VpcId"] as? String ?? "") }.map(name).sorted()
  inventory["igw"] = items(
    try await workspace.aws(["ec2", "describe-internet-gateways"]), "InternetGateways"
  ).map { gateway in
    let attached = (gateway["Attachments"] as? [[String: Any]] ?? []).compactMap {
      $0["VpcId"] as? String
    }
    return name(gateway) + (attached.isEmpty ? " detached" : " attached")
  }.sorted()
  inventory["eip"] = items(try await workspace.aws(["ec2", "describe-addresses"]), "Addresses").map(
    name
  ).sorted()
  inventory["nat"] = items(
    try await workspace.aws(["ec2", "describe-nat-gateways"]), "NatGateways"
  )
  .filter { !["deleted", "deleting"].contains($0["State"] as? String ?? "") }.map(name).sorted()
  let tables = items(try await workspace.aws(["ec2", "describe-route-tables"]), "RouteTables")
    .filter { vpcIds.contains($0["VpcId"] as? String ?? "") }
    .filter {
      !((($0["Associations"] as? [[String: Any]]) ?? []).contains { $0["Main"] as? Bool == true })
    }
  inventory["route-table"] = tables.map { table in
    let associations = (table["Associations"] as? [[String: Any]] ?? []).filter {
      $0["Main"] as? Bool != true
    }.count
    let routes = (table["Routes"] as? [[String: Any]] ?? []).filter {
      $0["DestinationCidrBlock"] as? String == "0.0.0.0/0"
    }.count
    return "\(name(table)) associations=\(associations) default-routes=\(routes)"
  }.sorted()
  return inventory
}

/// The network inventory an uninterrupted run of the local configuration leaves.
let expectedNetworkInventory: [String: [String]] = [
  "vpc": ["unisync-vpc"],
  "subnet": ["unisync-private-2a", "unisync-private-2c", "unisync-public-2a", "unisync-public-2c"],
  "igw": ["unisync-igw attached"],
  "eip": ["unisync-nat-eip"],
  "nat": ["unisync-nat"],
  "route-table": [
    "unisync-private-rt associations=2 default-routes=1",
    "unisync-public-rt associations=2 default-routes=1",
  ],
]

/// The calls the aws shim logged to `path` (`RUNBOOK_AWS_LOG`), one JSON object each.
func loggedAWSCalls(_ path: String) -> [[String: Any]] {
  guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
  return text.split(separator: "\n").compactMap {
    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
  }
}

extension Workspace {
  /// Runs the tool with the aws shim logging every call (`RUNBOOK_AWS_LOG`); returns the run and the calls.
  func runLogged(_ arguments: [String]) async throws -> (run: ToolRun, calls: [[String: Any]]) {
    let log = directory.appendingPathComponent("aws-\(UUID().uuidString.prefix(8)).log").path
    let run = try await self.run(arguments, environment: ["RUNBOOK_AWS_LOG": log])
    return (run, loggedAWSCalls(log))
  }

  /// Runs `arguments` with `--jobs 1`, killing the tool right after the first write call of every
  /// run (before it can record anything), until a run ends by itself or `limit` runs were made.
  /// With `sampled: (count, total)` and without ``crashAll``, only `count` of the `total` writes
  /// are interrupted (``sampledWrites(_:of:)``; see ``runInterrupted(_:at:interrupt:waits:environment:limit:check:)``).
  /// Between a kill and the next run, EC2 has converged (the strict layer's `settle`): an
  /// operator's restart takes longer than EC2's moment of not seeing a new id, and a resume
  /// within it would retry its first write naming that id, a write killed once more, so the
  /// number of kills would depend on the machine's speed. (The retry itself has tests of its own.)
  /// - Returns: how many runs were killed, and the run that ended by itself (nil if none did).
  func runKilledAfterEveryWrite(
    _ arguments: [String], environment: [String: String] = [:], limit: Int = 40,
    sampled: (count: Int, total: Int)? = nil
  ) async throws -> (kills: Int, last: ToolRun?) {
    if let sampled, !crashAll {
      let chain = try await runInterrupted(
        arguments, at: sampledWrites(sampled.count, of: sampled.total), environment: environment,
        limit: limit)
      return (
        chain.missed.isEmpty ? chain.interruptions.count : -chain.missed.count, chain.finished
      )
    }
    let counter = directory.appendingPathComponent("crash-counter").path
    var kills = 0
    for _ in 0..<limit {
      try Data().write(to: URL(fileURLWithPath: counter))
      var variables = environment
      variables["RUNBOOK_CRASH_AT"] = "1"
      variables["RUNBOOK_CRASH_COUNTER"] = counter
      let run = try await self.run(arguments + ["--jobs", "1"], environment: variables)
      guard run.signaled, run.status == SIGKILL else { return (kills, run) }
      kills += 1
      if let strict = try? StrictLayer.forThisProcess(), strict.url == endpoint {
        try strict.settleEC2()
      }
    }
    return (kills, nil)
  }
}

/// Kills `run STEP --yes` right after every write (``Workspace/runKilledAfterEveryWrite(_:environment:limit:sampled:)``)
/// and checks that each of the step's `writes` write actions was interrupted once before a run finished.
/// With `sampled` (and without ``crashAll``: `make crash-all`) only that many writes, spread over
/// the step, are interrupted.
func assertResumesAfterEveryKill(
  _ workspace: Workspace, step: String, writes: Int, sampled: Int? = nil,
  file: StaticString = #filePath,
  line: UInt = #line
) async throws {
  let chain = try await workspace.runKilledAfterEveryWrite(
    ["run", step, "--yes"], sampled: sampled.map { ($0, writes) })
  XCTAssertEqual(
    chain.last?.status, 0, chain.last?.summary ?? "no run finished", file: file, line: line)
  let expected = crashAll ? writes : min(sampled ?? writes, writes)
  XCTAssertEqual(
    chain.kills, expected, "every sampled write should have been interrupted once", file: file,
    line: line)
}

/// Runs `run STEP --yes` again and checks that it succeeds without a single aws call.
func assertRerunCallsNothing(
  _ workspace: Workspace, step: String, file: StaticString = #filePath, line: UInt = #line
) async throws {
  let rerun = try await workspace.runLogged(["run", step, "--yes"])
  XCTAssertEqual(rerun.run.status, 0, rerun.run.summary, file: file, line: line)
  XCTAssertEqual(
    rerun.calls.count, 0, "a rerun of a finished step calls aws", file: file, line: line)
}

/// The tool running in the background, its output going to a file.
final class RunningTool {
  let process = Process()
  let output: URL
  private let handle: FileHandle

  var pid: Int32 { process.processIdentifier }
  /// Whether it ended by a signal (once ``finish()`` returned).
  var signaled: Bool { process.terminationReason == .uncaughtSignal }

  /// `environment` adds to (or overrides) the test's own environment.
  init(
    _ workspace: Workspace, _ arguments: [String], endpoint: String? = nil,
    environment extra: [String: String] = [:]
  ) throws {
    process.executableURL = URL(fileURLWithPath: try Workspace.binary())
    process.arguments =
      [
        "--config", workspace.configPath, "--state-dir", workspace.stateDirectory,
        "--endpoint-url", endpoint ?? workspace.endpoint,
      ] + arguments
    // As every run of the workspace: its environment too (the shims' logs among it).
    var environment = ProcessInfo.processInfo.environment
    environment["PATH"] = Workspace.shimmedPath
    environment["NO_COLOR"] = "1"
    environment.merge(workspace.environment) { $1 }
    environment.merge(extra) { $1 }
    process.environment = environment
    output = workspace.directory.appendingPathComponent(
      "background-\(UUID().uuidString.prefix(8)).out")
    workspace.backgroundOutputs.append(output)
    _ = FileManager.default.createFile(atPath: output.path, contents: nil)
    handle = try FileHandle(forWritingTo: output)
    process.standardOutput = handle
    process.standardError = handle
    process.standardInput = FileHandle.nullDevice
    try process.run()
  }

  /// Waits until the process is stopped (SIGSTOP), up to `seconds`.
  func waitUntilStopped(seconds: Double = 120) async throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
      let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
      // The state letter follows the command name in parentheses.
      if let close = stat.lastIndex(of: ")"),
        stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("T")
      {
        return
      }
      guard process.isRunning else {
        throw HarnessError.missing("the run ended before it was stopped")
      }
      try await Task.sleep(nanoseconds: 100_000_000)
    }
    throw HarnessError.missing("the run was not stopped within \(seconds) s")
  }

  /// Waits (up to `seconds`) until the checkpoint records at least `count` actions.
  func waitForRecordedActions(_ count: Int, in workspace: Workspace, seconds: Double = 120)
    async throws
  {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline, process.isRunning {
      if let checkpoint = try? workspace.checkpoint(), checkpoint.actions.count >= count { return }
      try await Task.sleep(nanoseconds: 100_000_000)
    }
  }

  /// Waits for the tool to end; returns its exit status and everything it wrote.
  func finish() async throws -> (status: Int32, text: String) {
    while process.isRunning { try await Task.sleep(nanoseconds: 50_000_000) }
    try handle.close()
    return (process.terminationStatus, (try? String(contentsOf: output, encoding: .utf8)) ?? "")
  }
}

/// Waits until no process started with `NAME=VALUE` in its environment is left (the aws calls of
/// a run that was killed: they outlive it, and finish what they were sending); a bound for a
/// machine under load, which only a failing test reaches.
func waitUntilNoProcess(withEnvironment variable: String, seconds: Double = 300) async throws {
  let needle = Data(variable.utf8)
  func survivors() -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return names.filter { name in
      guard name.allSatisfy(\.isNumber), name != String(getpid()),
        let environ = FileManager.default.contents(atPath: "/proc/\(name)/environ")
      else { return false }
      return environ.split(separator: 0).contains { Data($0) == needle }
    }
  }
  let deadline = Date().addingTimeInterval(seconds)
  while !survivors().isEmpty {
    guard Date() < deadline else {
      throw HarnessError.missing(
        "processes with \(variable) still running after \(Int(seconds)) s: \(survivors())")
    }
    try await Task.sleep(nanoseconds: 100_000_000)
  }
}

/// The files below `folder` (recursively) whose bytes hold one of `secrets` (by name), as
/// "path: name"; none when the folder does not exist.
func filesHolding(_ secrets: [String: String], below folder: String) -> [String] {
  var found: [String] = []
  let enumerator = FileManager.default.enumerator(atPath: folder)
  while let name = enumerator?.nextObject() as? String {
    let path = folder + "/" + name
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory),
      !isDirectory.boolValue, let data = FileManager.default.contents(atPath: path)
    else { continue }
    for (secret, value) in secrets where data.range(of: Data(value.utf8)) != nil {
      found.append("\(path): \(secret)")
    }
  }
  return found.sorted()
}

/// A workspace whose checkpoint says the network step's VPC is done (no emulator resource behind it).
func seededWorkspace(configure: (inout [String: Any]) -> Void = { _ in }) throws -> Workspace {
  let workspace = try Workspace(configure: configure)
  let state = StateDirectory(path: workspace.stateDirectory)
  try state.prepare()
  var checkpoint = Checkpoint(deployment: "unisync", region: "ap-northeast-2")
  checkpoint.account = "123456789012"
  checkpoint.exports["VPC_ID"] = "vpc-0123456789abcdef0"
  checkpoint.actions["network/vpc"] = ActionRecord(
    status: .done, outcome: .created, value: "vpc-0123456789abcdef0", export: "VPC_ID")
  try state.save(checkpoint)
  checkpoint.serial += 1
  try state.save(checkpoint)
  try Journal(path: state.journalFile).append(
    JournalEntry(
      lineage: checkpoint.lineage, event: .intent, action: "network/subnet-public-2a",
      command: "aws ec2 create-subnet"))
  return workspace
}

/// Prints a figure a test measured (`crash chain: 71 interruptions...`), and appends it to
/// `$RUNBOOK_TEST_DIR/test-report.log`: `swift test --parallel` shows no output of a test that
/// passed, and docs/reliability.md quotes these lines.
func report(_ line: String) {
  print(line)
  guard let directory = ProcessInfo.processInfo.environment["RUNBOOK_TEST_DIR"], !directory.isEmpty
  else { return }
  let path = directory + "/test-report.log"
  let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
  guard fd >= 0 else { return }
  defer { close(fd) }
  let text = Array((line + "\n").utf8)
  _ = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}
