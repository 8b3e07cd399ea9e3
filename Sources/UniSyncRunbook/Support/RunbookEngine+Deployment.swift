import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

extension Deployment: RunConfiguration {}

extension Command {
  /// A `docker` command.
  package static func docker(_ arguments: Argument...) -> Command {
    Command(tool: "docker", arguments: arguments)
  }
}

extension Preflight {
  /// This runbook's checks before a run: the AWS account of the credentials, the Docker daemon
  /// when images are still to be built, and where verify's probe comes from.
  package static let unisync = Preflight(
    account: AWSCLI.callerAccount, accountPattern: AWSCLI.accountPattern,
    accountDescription: "the AWS account of these credentials",
    services: [
      ServiceCheck(tool: "docker", arguments: ["version", "--format", "{{.Server.Version}}"]) {
        reason, steps in
        "the Docker daemon does not answer (\(reason)), and the steps \(steps.joined(separator: ", ")) build and push images: start dockerd (or Docker Desktop), or point DOCKER_HOST at a running engine (see 'runbook doctor')"
      }
    ],
    toolHints: [HealthProbe.tool: "is built and installed beside runbook"])
}

extension Engine where Configuration == Deployment {
  /// An engine for this runbook: its steps, the aws CLI's options and output, its preflight.
  package convenience init(
    deployment: Deployment, state: any StateStore, catalogue: [any GuideStep] = Catalogue.steps,
    runner: any CommandRunner, reporter: any Reporter, prompter: (any Prompter)?, aws: AWSSettings,
    secrets: SecretStore = SecretStore(), options: RunOptions,
    environment: [String: String] = ProcessInfo.processInfo.environment,
    programs: [String: String] = [:]
  ) {
    var options = options
    options.pauseScale = Double(deployment.operations.pausePercent) / 100
    self.init(
      configuration: deployment, state: state, catalogue: catalogue, runner: runner,
      reporter: reporter, prompter: prompter, region: aws.region,
      toolArguments: AWSCLI.toolArguments(aws), dialect: AWSCLIDialect(), preflight: .unisync,
      secrets: secrets, options: options, environment: environment, programs: programs)
  }
}
