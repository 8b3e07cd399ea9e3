import Foundation
import RunbookAWS
import RunbookEngine
import RunbookProcess
import RunbookState

/// Guide 7: the Lambda execution role (7.1), and the function packaged and deployed (7.2).
///
/// What the guide leaves out and this step adds:
/// - the inline policy for the SQS queues and the `unisync/*` secrets it asks for but never writes.
///   The queues' ARNs follow from their names (`arn:aws:sqs:REGION:ACCOUNT:NAME`), so the policy
///   can be written before the sqs step (guide 8) creates them, and the steps keep the guide's order;
/// - the VPC configuration that `AWSLambdaVPCAccessExecutionRole` is for (private subnets, `ECS_SG`);
/// - an existing function gets new code only when the package differs from what it runs.
///
/// The package is built in a fresh folder of each run: `pip install -r requirements.txt -t`, the
/// handler copied in, then zipped. So that the same sources give the same zip (and its SHA-256 can
/// be compared with the function's `CodeSha256`), every file gets the same permissions and a fixed
/// time before zipping, and `zip -X` leaves out owners and extra timestamps.
package struct LambdaStep: Step {
  package let id = "lambda"
  package let section = "7"
  package let title = "Lambda function"

  package init() {}

  /// The time every packaged file gets (zip stores local time: a local time stays the same
  /// whatever the machine's time zone).
  static let packageTime = "1980-01-02T00:00:00"

  package func actions(for deployment: Deployment) -> [Action] {
    var actions: [Action] = []

    // 7.1 Create the Lambda execution role.
    actions += deployment.roleActions(step: id, Self.role(deployment))

    // 7.2 Package together with the dependencies.
    actions += package(deployment)

    // Create the Lambda function.
    actions += function(deployment)
    return deployment.observing(actions, step: id)
  }

  /// The execution role: the managed policies the guide attaches, and the SQS and Secrets Manager
  /// permissions it asks for.
  static func role(_ deployment: Deployment) -> RoleSpec {
    let queues = [deployment.sqs.deadLetterQueue].filter { !$0.isEmpty } + deployment.sqs.queues
    let queueARNs = queues.map(SQSStep.queueARN)
    return RoleSpec(
      key: "role", name: deployment.lambda.roleName, principal: "lambda.amazonaws.com",
      export: "LAMBDA_ROLE_ARN",
      managedPolicies: [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
        "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole",
      ],
      inlinePolicyName: "SQSAndSecretsManagerAccess",
      inlinePolicy: policyDocument([
        (
          [
            "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
            "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
          ], queueARNs
        ),
        (["secretsmanager:GetSecretValue"], deployment.secretARNPatterns()),
      ]))
  }

  /// The function's source folder, absolute.
  static func source(_ deployment: Deployment) -> String {
    let path = deployment.lambda.source
    let absolute = path.hasPrefix("/") ? path : deployment.baseDirectory + "/" + path
    return URL(fileURLWithPath: absolute).standardized.path
  }

  /// The handler's file inside the source folder: `src.handler.lambda_handler` → `src/handler.py`.
  static func handlerFile(_ handler: String) -> String {
    let module = handler.split(separator: ".").dropLast()
    return module.joined(separator: "/") + ".py"
  }

  /// The zip in this run's folder.
  static func zipPath(_ deployment: Deployment) -> Argument {
    "\(ref: ContextValue.runDirectory)/\(deployment.lambda.functionName).zip"
  }

  private func package(_ deployment: Deployment) -> [Action] {
    let source = Self.source(deployment)
    let handler = Self.handlerFile(deployment.lambda.handler)
    let folder: Argument = "\(ref: ContextValue.runDirectory)/package"
    let handlerFolder = handler.split(separator: "/").dropLast().joined(separator: "/")
    func local(_ name: String, _ summary: String, _ command: Command, after: [String]) -> Action {
      Action(
        name: name, summary: summary, effect: .read, command: command, after: after, ephemeral: true
      )
    }
    return [
      // pip install -r requirements.txt -t package/ (no .pyc: they hold build times). Wheels for
      // the function's platform and Python, not the operator's machine's: what pip would build
      // or pick for a laptop may not load in Lambda ("Working with .zip file archives for Python
      // Lambda functions" in the Lambda developer guide).
      local(
        "package-dependencies", "install \(source)/requirements.txt into a fresh folder",
        Command(
          tool: "python3",
          arguments: [
            "-m", "pip", "install", "--no-compile", "--disable-pip-version-check", "--no-input",
            "--platform", .text(Self.wheelPlatform), "--implementation", "cp",
            "--python-version", .text(Self.pythonVersion(deployment.lambda.runtime)),
            "--only-binary=:all:",
            "--requirement", .text(source + "/requirements.txt"), "--target", folder,
          ]), after: []),
      local(
        "package-handler-folder", "make the handler's folder in the package",
        Command(
          tool: "mkdir",
          arguments: ["-p", folder + .text(handlerFolder.isEmpty ? "" : "/" + handlerFolder)]),
        after: ["package-dependencies"]),
      // zip -g canvas-sync-lambda.zip src/handler.py
      local(
        "package-handler", "copy the handler \(handler) into the package",
        Command(
          tool: "cp", arguments: [.text(source + "/" + handler), folder + .text("/" + handler)]),
        after: ["package-handler-folder"]),
      local(
        "package-permissions", "make the packaged files readable by Lambda",
        Command(tool: "chmod", arguments: ["-R", "u=rwX,go=rX", folder]), after: ["package-handler"]
      ),
      local(
        "package-times", "give every packaged file the same time",
        Command(
          tool: "find",
          arguments: [folder, "-exec", "touch", "-h", "-d", .text(Self.packageTime), "{}", "+"]),
        after: ["package-permissions"]),
      // cd package && zip -r ../canvas-sync-lambda.zip .
      local(
        "package-zip", "zip the package",
        Command(
          tool: "zip", arguments: ["-X", "-D", "-r", "-q", Self.zipPath(deployment), "."],
          workingDirectory: folder),
        after: ["package-times"]),
      Self.packageSize(deployment),
    ]
  }

  /// The platform of the function's wheels (x86_64, Amazon Linux 2 and 2023).
  static let wheelPlatform = "manylinux2014_x86_64"

  /// `3.11` for the runtime `python3.11`.
  static func pythonVersion(_ runtime: String) -> String {
    runtime.hasPrefix("python") ? String(runtime.dropFirst("python".count)) : runtime
  }

  /// Lambda takes a .zip of at most 50 MB in a direct upload (`--zip-file`): "Lambda quotas",
  /// https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html. A larger package is
  /// refused here, before the function is created, rather than by AWS halfway.
  static let uploadLimitBytes = 50 * 1024 * 1024

  private static func packageSize(_ deployment: Deployment) -> Action {
    let zip = zipPath(deployment)
    let procedure = Procedure(
      "check the package's size", outline: [.note("the size of " + zip + " is at most 50 MB")]
    ) { context in
      guard let path = zip.text(values: context.values),
        let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int
      else { throw ProcedureFailure("the package \(zip) was not built") }
      guard size <= uploadLimitBytes else {
        throw ProcedureFailure(
          "the package is \(size / 1_048_576) MB, over Lambda's 50 MB limit for a .zip uploaded directly (Lambda quotas): "
            + "remove what the function does not need from requirements.txt, or move dependencies to a layer"
        )
      }
      return "\(size)"
    }
    return Action(
      name: "package-size", summary: "check that the package fits Lambda's 50 MB upload limit",
      effect: .read, command: Command(tool: "", arguments: []),
      capture: Capture(export: nil, pattern: "^[0-9]+$"), after: ["package-zip"],
      ephemeral: true, procedure: procedure)
  }

  private func function(_ deployment: Deployment) -> [Action] {
    let lambda = deployment.lambda
    let name = lambda.functionName
    let zip = Self.zipPath(deployment)
    let privateSubnets = deployment.network.subnets.filter { !$0.isPublic }.map {
      Argument.ref($0.export)
    }
    // URLs naming a service by its guide host name get the name that resolves in the VPC.
    let environment = ServiceDiscovery.lambdaEnvironment(deployment).sorted { $0.key < $1.key }
      .map { "\(jsonString($0.key)):\(jsonString($0.value))" }.joined(separator: ",")
    let pattern = arnPattern("lambda", "function:", name: name)
    return [
      Action(
        name: "function",
        summary:
          "create function \(name) (\(lambda.runtime), \(lambda.timeoutSeconds) s, \(lambda.memoryMB) MB, private subnets)",
        effect: .write,
        command: .aws(
          "lambda", "create-function", "--function-name", .text(name), "--runtime",
          .text(lambda.runtime),
          "--role", .ref("LAMBDA_ROLE_ARN"), "--handler", .text(lambda.handler),
          "--zip-file", "fileb://" + zip, "--timeout", "\(lambda.timeoutSeconds)",
          "--memory-size", "\(lambda.memoryMB)",
          "--environment", .text(#"{"Variables":{\#(environment)}}"#),
          "--vpc-config",
          #"{"SubnetIds":"# + jsonArray(privateSubnets)
            + #","SecurityGroupIds":["\#(ref: "ECS_SG")"]}"#,
          "--tags", deployment.tagMap(name: name, action: "\(id)/function"),
          "--query", "FunctionArn", "--output", "text"),
        capture: Capture(export: "LAMBDA_ARN", pattern: pattern),
        // A function of that name is refused (ResourceConflictException) and then found by it:
        // no read before every create.
        lookup: Lookup(
          .aws(
            "lambda", "list-functions", "--query",
            "Functions[?FunctionName=='\(name)'].FunctionArn",
            "--output", "text")),
        alreadyDoneErrors: ["ResourceConflictException"],
        after: [
          "package-size", "role-AWSLambdaBasicExecutionRole",
          "role-AWSLambdaVPCAccessExecutionRole",
          "role-SQSAndSecretsManagerAccess",
        ],
        // A role made a moment ago is not usable everywhere yet (IAM is eventually consistent).
        transientErrors: TransientErrors(
          [
            "cannot be assumed by Lambda",
            "does not have permissions to call CreateNetworkInterface",
          ],
          seconds: 120)),
      .waitUntil(
        "function-active", "wait until \(name) is active",
        command: .aws(
          "lambda", "get-function", "--function-name", .text(name),
          "--query", "Configuration.State", "--output", "text"),
        success: ["Active"], failure: ["Failed", "Inactive"], timeoutSeconds: 600,
        intervalSeconds: 5,
        after: ["function"]),
      // Or, when it exists, new code: only when the package differs from what it runs.
      Action(
        name: "function-code", summary: "update the code of \(name) when the package changed",
        effect: .write,
        command: .aws(
          "lambda", "update-function-code", "--function-name", .text(name), "--zip-file",
          "fileb://" + zip,
          "--query", "CodeSha256", "--output", "text"),
        capture: Capture(export: nil, pattern: #"^[A-Za-z0-9+/]{43}=$"#),
        precheck: Precheck(
          .aws(
            "lambda", "get-function", "--function-name", .text(name),
            "--query", "Configuration.CodeSha256", "--output", "text"),
          rule: "the function runs this package (same SHA-256)"
        ) { output, values in
          let deployed = output.trimmingCharacters(in: .whitespacesAndNewlines)
          guard let path = zip.text(values: values),
            let data = FileManager.default.contents(atPath: path)
          else { return nil }
          return SHA256.digest(data).base64EncodedString() == deployed ? deployed : nil
        },
        after: ["package-size", "function-active"],
        // A function created in this run runs this very package. A function of that name that
        // existed already is someone else's: its code is left as it is.
        settledBy: .nothingToDo(whenCreated: "function")
      ).configuring("function"),
    ]
  }
}

// MARK: - Teardown (runbook destroy)

extension LambdaStep {
  /// The function, then its role. Lambda keeps the function's network interfaces in the private
  /// subnets for a while after the function is deleted ("Deleting a Lambda function" in
  /// https://docs.aws.amazon.com/lambda/latest/dg/configuration-vpc.html: deleting the subnets or
  /// security groups meanwhile fails with DependencyViolation): the teardown waits until none is
  /// left, then removes the role (the interfaces' cleanup uses it), so the security and network
  /// teardowns find nothing in the way.
  package func teardown(for deployment: Deployment) -> [Action] {
    let name = deployment.lambda.functionName
    let interfaces = Command.aws(
      "ec2", "describe-network-interfaces", "--filters",
      ec2Filters(
        [("description", ["AWS Lambda VPC ENI-\(name)*"])], exports: [("group-id", "ECS_SG")]),
      "--query", "length(NetworkInterfaces)", "--output", "text")
    return [
      Action(
        name: "delete-function", summary: "delete function \(name)",
        effect: .write,
        command: .aws("lambda", "delete-function", "--function-name", .text(name)),
        alreadyDoneErrors: ["ResourceNotFoundException"], deletes: "function"),
      Action(
        name: "function-interfaces-gone",
        summary: "wait until Lambda has removed the function's network interfaces",
        effect: .read, command: interfaces,
        wait: Wait(
          interfaces, until: ["0"], failOn: [],
          timeoutSeconds: Double(deployment.operations.dependencyRetrySeconds)),
        after: ["delete-function"], deletes: "function"),
    ] + deployment.roleTeardown(Self.role(deployment), after: ["function-interfaces-gone"])
  }
}
