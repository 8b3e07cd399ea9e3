import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// Guide 5: the ECR repositories (5.1), and the images built and pushed into them (5.2).
///
/// - Images go to `<registry>/<prefix>/<service>`: the ECR host `<ACCOUNT_ID>.dkr.ecr.<REGION>.amazonaws.com`,
///   or the configuration's `registry` (the local profile pushes to a registry on 127.0.0.1).
/// - The login is `aws ecr get-login-password | docker login --password-stdin`: two processes and a
///   pipe, no shell; the token never appears in an argument or in any output.
/// - Each image gets a unique tag and `latest`, as the guide pushes it. Task definitions use the
///   unique tag: ECS resolves a tag to a digest when a deployment starts, so re-pushing `latest`
///   alone never rolls anything out. The tag is the short git commit of the build context, else a
///   UTC timestamp, or `run --tag`; it is decided once (export `IMAGE_TAG`) and a resumed run keeps it.
/// - Each pushed digest is recorded (`IMAGE_DIGEST_<SERVICE>`). A push interrupted before it was
///   recorded is looked up in the registry (`docker manifest inspect`, which works against ECR and
///   any registry docker can log in to), so a tag once pushed is not pushed again with other content.
package struct ECRStep: Step {
  package let id = "ecr"
  package let section = "5"
  package let title = "ECR and Docker images"

  package init() {}

  /// `REPO_URI_API_GATEWAY` for `api-gateway`.
  package static func repositoryExport(_ service: String) -> String {
    "REPO_URI_" + exportSuffix(service)
  }
  /// `IMAGE_DIGEST_API_GATEWAY` for `api-gateway`.
  package static func digestExport(_ service: String) -> String {
    "IMAGE_DIGEST_" + exportSuffix(service)
  }
  package static let tagExport = "IMAGE_TAG"
  /// The image's digest in `docker manifest inspect --verbose` (its first `digest`).
  static let manifestDigest = #""digest": "(sha256:[0-9a-f]{64})""#

  /// The registry images are pushed to and ECS pulls from.
  static func registry(_ deployment: Deployment) -> Argument {
    if let registry = deployment.registry { return .text(registry) }
    return "\(ref: ContextValue.account).dkr.ecr.\(ref: ContextValue.region).amazonaws.com"
  }

  /// `<registry>/<prefix>/<service>`, without a tag.
  static func image(_ deployment: Deployment, _ service: String) -> Argument {
    Argument(
      registry(deployment).fragments + [.text("/" + repositoryName(deployment, service))])
  }

  /// `<image>:<IMAGE_TAG>`, the reference task definitions use.
  static func taggedImage(_ deployment: Deployment, _ service: String) -> Argument {
    Argument(image(deployment, service).fragments + [.text(":"), .export(tagExport)])
  }

  static func repositoryName(_ deployment: Deployment, _ service: String) -> String {
    "\(deployment.ecr.repositoryPrefix)/\(service)"
  }

  package func actions(for deployment: Deployment) -> [Action] {
    var actions: [Action] = []

    // 5.1 One ECR repository per service.
    for service in deployment.services {
      actions.append(repository(deployment, service.name))
    }

    // 5.2 Log in to ECR (the token goes through a pipe, never through the tool).
    actions.append(Self.login(deployment))

    actions.append(imageTag(deployment))

    // Build, tag and push each service; the builds run side by side.
    for service in deployment.services {
      actions += buildAndPush(deployment, service)
    }
    return deployment.observing(actions, step: id)
  }

  /// `create-repository` with scanning on push. A repository of that name that exists already is
  /// this deployment's only when it carries the deployment's lineage tag (a run killed after its
  /// create made it): then it is used. Another one (made by hand, or by another team in a shared
  /// account) makes the create fail (`RepositoryAlreadyExistsException`) and the step stop before
  /// anything is pushed to it: pushing would move that repository's `latest`. `--adopt` uses it as
  /// it is, and `destroy` then leaves it. (ECR's `DescribeRepositories` answers no tags, so the
  /// look-up reads the repository's tags by its ARN, which follows from its name.)
  private func repository(_ deployment: Deployment, _ service: String) -> Action {
    let name = Self.repositoryName(deployment, service)
    let key = "repository-\(service)"
    let account = ContextValue.account
    let region = ContextValue.region
    // The URI when the lineage tag is this deployment's (JMESPath's `&&` answers its right side
    // when the left one is not empty), else nothing.
    let own = Command.aws(
      "ecr", "list-tags-for-resource", "--resource-arn",
      "arn:aws:ecr:\(ref: region):\(ref: account):repository/\(name)", "--query",
      "tags[?Key=='\(OwnershipTag.lineage)' && Value=='\(ref: ContextValue.lineage)'] && '\(ref: account).dkr.ecr.\(ref: region).amazonaws.com/\(name)'",
      "--output", "text")
    let any = Command.aws(
      "ecr", "describe-repositories",
      "--query", "repositories[?repositoryName=='\(name)'].repositoryUri", "--output", "text")
    var action = Action.create(
      key, "create ECR repository \(name) (scan on push)", export: Self.repositoryExport(service),
      pattern: #"^[0-9]{12}\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com(\.cn)?/"#
        + NSRegularExpression.escapedPattern(for: name) + "$",
      command: .aws(
        "ecr", "create-repository", "--repository-name", .text(name),
        "--image-scanning-configuration",
        .text(#"{"scanOnPush":\#(deployment.ecr.scanOnPush)}"#),
        "--tags", deployment.tagList(name: name, action: "\(id)/\(key)"),
        "--query", "repository.repositoryUri", "--output", "text"),
      lookup: own, adoptLookup: any)
    action.lookup?.notFoundErrors = ["RepositoryNotFoundException"]
    action.alreadyDoneErrors = ["RepositoryAlreadyExistsException"]
    return action
  }

  /// The image tag of this deployment, decided once: `run --tag`, else the short git commit of the
  /// first service's build context, else the time (UTC).
  private func imageTag(_ deployment: Deployment) -> Action {
    if let tag = deployment.imageTag {
      return Action(
        name: "image-tag", summary: "use the image tag given with --tag", effect: .read,
        command: Command(tool: "echo", arguments: [.text(tag)]),
        capture: Capture(export: Self.tagExport, pattern: exactPattern(tag)))
    }
    let context = deployment.services.first.map { buildContext(deployment, $0) } ?? "."
    let git = Command(
      tool: "git", arguments: ["-C", .text(context), "rev-parse", "--short", "HEAD"])
    return Action(
      name: "image-tag",
      summary: "tag images with the short git commit of \(context), else the time (UTC)",
      effect: .read,
      command: Command(tool: "date", arguments: ["-u", "+%Y%m%d%H%M%S"]),
      capture: Capture(export: Self.tagExport, pattern: #"^[0-9]{14}$"#),
      precheck: Precheck(git, rule: "the build context is in a git work tree") { output, _ in
        let commit = output.trimmingCharacters(in: .whitespacesAndNewlines)
        return commit.range(of: #"^[0-9a-f]{4,40}$"#, options: .regularExpression) != nil
          ? commit : nil
      })
  }

  /// The absolute build context of a service.
  func buildContext(_ deployment: Deployment, _ service: Deployment.Service) -> String {
    let path = service.buildContext
    let absolute = path.hasPrefix("/") ? path : deployment.baseDirectory + "/" + path
    return URL(fileURLWithPath: absolute).standardized.path
  }

  /// `aws ecr get-login-password | docker login`: the token goes through a pipe, never through
  /// the tool. (Shared with `update`.)
  static func login(_ deployment: Deployment) -> Action {
    let registry = Self.registry(deployment)
    return Action(
      name: "login", summary: "log in to the image registry \(registry) with an ECR token",
      effect: .read,
      command: Command.aws("ecr", "get-login-password").piped(
        into: .docker("login", "--username", "AWS", "--password-stdin", registry)),
      ephemeral: true)
  }

  /// Build, tag and push of one service's image (shared with `update`, guide 10).
  /// - Parameters:
  ///   - tag: the unique tag; nil: this step's `IMAGE_TAG`.
  ///   - withLatest: also tag and push `latest`, and record the digest as `IMAGE_DIGEST_<SERVICE>`
  ///     (this step); `update` pushes its tag alone, as the guide's section 10 does.
  func buildAndPush(
    _ deployment: Deployment, _ service: Deployment.Service, tag: Argument? = nil,
    withLatest: Bool = true
  ) -> [Action] {
    let image = Self.image(deployment, service.name)
    let tagged = Argument(
      image.fragments + [.text(":")] + (tag?.fragments ?? [.export(Self.tagExport)]))
    let latest = Argument(image.fragments + [.text(":latest")])
    let context = buildContext(deployment, service)
    // docker manifest inspect speaks plain HTTP to a registry on this machine only with --insecure
    // (the engine itself allows it for 127.0.0.0/8).
    let loopback =
      deployment.registry.map {
        $0.hasPrefix("127.") || $0.hasPrefix("localhost:") || $0.hasPrefix("[::1]:")
      } ?? false
    let inspect: [Argument] =
      ["manifest", "inspect"] + (loopback ? ["--insecure"] : []) + ["--verbose", tagged]
    return [
      // docker build -t <image>:<tag> -t <image>:latest <context>. Fargate runs linux/amd64 unless
      // a task definition asks otherwise, whatever machine builds the image.
      Action(
        name: "build-\(service.name)", summary: "build \(service.name) from \(context)",
        effect: .read,
        command: Command(
          tool: "docker",
          arguments: ["build", "--platform", "linux/amd64", "--tag", tagged]
            + (withLatest ? ["--tag", latest] : []) + [.text(context)]),
        ephemeral: true),
      Action(
        name: "push-\(service.name)", summary: "push \(service.name) with its unique tag",
        effect: .write, command: .docker("push", tagged),
        capture: Capture(
          export: withLatest ? Self.digestExport(service.name) : nil,
          pattern: #"^sha256:[0-9a-f]{64}$"#,
          extract: #"digest: (sha256:[0-9a-f]{64})"#),
        lookup: Lookup(
          Command(tool: "docker", arguments: inspect),
          extract: Self.manifestDigest, notFoundErrors: ["no such manifest"]),
        after: ["login"] + (withLatest ? ["repository-\(service.name)"] : []) + [
          "build-\(service.name)"
        ]),
      // Pushed only when `latest` is not this image already.
      Action(
        name: "push-latest-\(service.name)", summary: "push \(service.name) as latest",
        effect: .write, command: .docker("push", latest),
        precheck: Precheck(
          Command(tool: "docker", arguments: Array(inspect.dropLast()) + [latest]),
          rule: "latest is this image already"
        ) { output, values in
          let digest = extractedValues(Self.manifestDigest, in: output).first
          return digest != nil && digest == values[Self.digestExport(service.name)] ? digest : nil
        },
        after: ["login", "build-\(service.name)", "push-\(service.name)"]),
    ].filter { withLatest || !$0.name.hasPrefix("push-latest-") }
  }
}

// MARK: - Teardown (runbook destroy)

extension ECRStep {
  /// Each repository deleted with its images (`--force`). Images pushed to a registry of the
  /// configuration's own (`registry`) stay there: that registry is not AWS's.
  package func teardown(for deployment: Deployment) -> [Action] {
    deployment.services.map { service in
      let name = Self.repositoryName(deployment, service.name)
      return Action(
        name: "delete-repository-\(service.name)",
        summary: "delete ECR repository \(name) and its images",
        effect: .write,
        command: .aws("ecr", "delete-repository", "--repository-name", .text(name), "--force"),
        alreadyDoneErrors: ["RepositoryNotFoundException"], deletes: "repository-\(service.name)")
    }
  }
}
