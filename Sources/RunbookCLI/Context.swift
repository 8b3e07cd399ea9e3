import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState
import UniSyncRunbook

/// What every command needs: the configuration, where the state is kept and the aws settings.
struct Context {
  var deployment: Deployment
  /// The local state folder: the state itself, or (with S3 state) the logs and `state push`/`pull`'s counterpart.
  var stateDirectory: String
  /// `--state` or the configuration's `state`: the S3 location of the state (prefix included), if any.
  var s3State: S3Location?
  package var aws: AWSSettings
  var variables: [String: String]
  /// The folder of the running executable (``Frontend/Environment/executableDirectory``).
  var executableDirectory: String?

  init(parsed: ParsedCommandLine, environment: Frontend.Environment) throws {
    variables = environment.variables
    executableDirectory = environment.executableDirectory
    let configPath = parsed.options["config"] ?? "runbooks/unisync-ecs.json"
    let absolute =
      configPath.hasPrefix("/") ? configPath : environment.workingDirectory + "/" + configPath
    var deployment = try Deployment.load(from: absolute)
    deployment.baseDirectory = URL(fileURLWithPath: absolute).deletingLastPathComponent().path
    self.deployment = deployment
    let state =
      parsed.options["state-dir"]
      ?? Self.defaultStateDirectory(
        deployment: deployment.name, workingDirectory: environment.workingDirectory)
    stateDirectory = state.hasPrefix("/") ? state : environment.workingDirectory + "/" + state
    if let text = parsed.options["state"] ?? deployment.state {
      let location = try S3Location.parse(text).mapError { UsageError("--state: \($0)") }.get()
      // A bucket alone gets a prefix named after the deployment, so environments never share one.
      s3State =
        location.prefix.isEmpty ? location.appending("runbook/\(deployment.name)") : location
    }
    let endpoint =
      parsed.options["endpoint-url"]
      ?? environment.variables["AWS_ENDPOINT_URL"].flatMap { $0.isEmpty ? nil : $0 }
    if let endpoint, Validate.httpURL(endpoint) != nil {
      throw UsageError("--endpoint-url: '\(endpoint)' is not an http(s) URL")
    }
    let region = parsed.options["region"] ?? deployment.region
    if let reason = Validate.region(region) { throw UsageError("--region: \(reason)") }
    aws = AWSSettings(region: region, endpointURL: endpoint, profile: parsed.options["profile"])
  }

  /// `.runbook/<deployment>`; `.runbook` itself when it holds a checkpoint already (the layout of
  /// earlier versions, which kept one deployment there).
  static func defaultStateDirectory(deployment: String, workingDirectory: String) -> String {
    if FileManager.default.fileExists(atPath: workingDirectory + "/.runbook/state.json") {
      return ".runbook"
    }
    return ".runbook/" + deployment
  }

  /// The local state folder.
  var localState: StateDirectory { StateDirectory(path: stateDirectory) }

  /// Where the state is kept: S3 when `--state` (or the configuration) says so, else the local folder.
  func stateStore(runner: any CommandRunner) -> any StateStore {
    guard let s3State else { return localState }
    let lease = variables["RUNBOOK_LOCK_LEASE_SECONDS"].flatMap(Double.init) ?? 120
    return S3StateStore(
      root: s3State, runner: runner, aws: aws, logsDirectory: localState.logsDirectory,
      leaseSeconds: lease)
  }

  /// Where the programs that come with runbook are (beside it, else on PATH), by name.
  var programs: [String: String] {
    guard let probe = HealthProbe.programPath(besides: executableDirectory, path: variables["PATH"])
    else { return [:] }
    return [HealthProbe.tool: probe]
  }

  func engine(
    runner: any CommandRunner, reporter: any Reporter, prompter: (any Prompter)?,
    options: RunOptions, imageTag: String? = nil, request: RunRequest = RunRequest()
  ) -> Engine<Deployment> {
    var deployment = deployment
    if let imageTag { deployment.imageTag = imageTag }
    deployment.request = request
    return Engine(
      deployment: deployment, state: stateStore(runner: runner), runner: runner, reporter: reporter,
      prompter: prompter, aws: aws, options: options, environment: variables, programs: programs)
  }
}
