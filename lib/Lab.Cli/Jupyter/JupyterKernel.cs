using System.Reflection;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Lab.Cli.Engine;
using Lab.Cli.Notebooks;
using Lab.Display;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp;
using NetMQ;
using NetMQ.Sockets;

namespace Lab.Cli.Jupyter;

/// <summary>Settings of a <see cref="JupyterKernel"/>.</summary>
public sealed class KernelOptions
{
    /// <summary>How long a cell may run before the engine stops it. Defaults to no limit: a reader stops a cell with interrupt.</summary>
    public TimeSpan CellTimeout { get; init; } = Timeout.InfiniteTimeSpan;

    /// <summary>Where the kernel logs (dropped messages, errors). Defaults to the process's stderr, which Jupyter shows in its log.</summary>
    public TextWriter? Log { get; init; }
}

/// <summary>
/// A Jupyter kernel (messaging protocol 5.3) over ZeroMQ for the lab's C# engine. Five sockets bound where the
/// connection file says: shell and control (ROUTER), stdin (ROUTER), IOPub (PUB), heartbeat (REP, echo).
/// <para>
/// One poller thread owns every socket: it receives, checks signatures, and sends everything queued for sending, in
/// order. Shell requests run one at a time, in order, on a worker; control requests on another, so an interrupt or a
/// shutdown is handled while a cell runs. A cell runs on the engine's own thread; an interrupt cancels it, which
/// disposes what the cell started (that is what returns a blocked accept).
/// </para>
/// </summary>
public sealed class JupyterKernel
{
    enum Channel { Shell, Control, Stdin, IOPub }

    readonly ConnectionFile _connection;
    readonly KernelOptions _options;
    readonly MessageCodec _codec;
    readonly TextWriter _log;
    readonly string _session = Guid.NewGuid().ToString();
    readonly Channel<JupyterMessage> _shellQueue = System.Threading.Channels.Channel.CreateUnbounded<JupyterMessage>(new UnboundedChannelOptions { SingleReader = true });
    readonly Channel<JupyterMessage> _controlQueue = System.Threading.Channels.Channel.CreateUnbounded<JupyterMessage>(new UnboundedChannelOptions { SingleReader = true });
    readonly NetMQQueue<Action> _toPoller = new();
    readonly KernelHistory _history = new();
    readonly HashSet<string> _clientSessions = new(StringComparer.Ordinal);
    readonly CancellationTokenSource _stop = new();
    readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    readonly NotebookEngine _engine;

    RouterSocket? _shell, _control, _stdin;
    PublisherSocket? _iopub;
    ResponseSocket? _hb;
    NetMQPoller? _poller;
    int _executionCount;
    volatile RunningCell? _running;
    JupyterMessage? _lastExecute;
    Turn? _shellTurn, _controlTurn;
    // Displays whose output carried plotly.js at some point, and their latest bundle: see KeepPlotlyJsInLastFrames.
    readonly Dictionary<string, (MimeBundle Last, bool LastCarries)> _plotlyDisplays = new(StringComparer.Ordinal);

    /// <summary>
    /// One request being handled on shell or control. Its reply is held back and sent with its idle status, idle first, in
    /// one poller action. A client that reads the reply and then iopub (jupyter_kernel_test waits 0.1 s per iopub message)
    /// finds the idle already sent, however late this process runs after the reply. Publishing idle after the reply from
    /// the handler thread failed CI once on a busy machine; the probe idle-with-reply measures the difference.
    /// </summary>
    sealed class Turn(JupyterMessage request)
    {
        public JupyterMessage Request { get; } = request;
        public List<byte[]>? Reply;
    }

    /// <summary>The cell being executed: how to stop it and where its input_reply goes.</summary>
    sealed class RunningCell(JupyterMessage request)
    {
        public JupyterMessage Request { get; } = request;
        public CancellationTokenSource Cancel { get; } = new();
        public TaskCompletionSource<string>? PendingInput;
        public bool Interrupted;
    }

    public JupyterKernel(ConnectionFile connection, KernelOptions? options = null)
    {
        _connection = connection;
        _options = options ?? new KernelOptions();
        _log = _options.Log ?? ConsoleRouter.RealError;
        _codec = new MessageCodec(connection.Key, connection.SignatureScheme);
        if (connection.Transport != "tcp")
            throw new ArgumentException($"transport {connection.Transport} is not supported by the lab's kernel (NetMQ speaks tcp); use \"transport\": \"tcp\"");
        _engine = NewEngine();
    }

    NotebookEngine NewEngine() => new(new EngineOptions
    {
        DefaultTimeout = _options.CellTimeout,
        Plotly = PlotlyInclusion.FirstChartInSession,
        // Output of a finished cell's threads while no cell runs: shown under the last cell that ran, as ipykernel does.
        StrayOutput = (stream, text) =>
        {
            if (_lastExecute is { } parent && !IsSilent(parent)) Publish("stream", new JsonObject { ["name"] = stream, ["text"] = text }, parent);
            else _log.Write(text);
        },
    });

    /// <summary>The ports actually bound (the connection file's, or the ones picked for a port of 0).</summary>
    public IReadOnlyDictionary<string, int> Ports { get; private set; } = new Dictionary<string, int>();

    /// <summary>Binds the sockets and serves until a shutdown_request or <paramref name="ct"/>. Returns the process exit code.</summary>
    public async Task<int> RunAsync(CancellationToken ct = default)
    {
        using var reg = ct.Register(() => _stop.Cancel());
        _shell = new RouterSocket(); _control = new RouterSocket(); _stdin = new RouterSocket();
        _iopub = new PublisherSocket(); _hb = new ResponseSocket();
        foreach (var s in new NetMQSocket[] { _shell, _control, _stdin, _iopub, _hb }) s.Options.Linger = TimeSpan.FromSeconds(1);
        Ports = new Dictionary<string, int>
        {
            ["shell_port"] = Bind(_shell, _connection.ShellPort),
            ["iopub_port"] = Bind(_iopub, _connection.IopubPort),
            ["stdin_port"] = Bind(_stdin, _connection.StdinPort),
            ["control_port"] = Bind(_control, _connection.ControlPort),
            ["hb_port"] = Bind(_hb, _connection.HbPort),
        };

        _shell.ReceiveReady += (_, e) => Receive(e.Socket, Channel.Shell);
        _control.ReceiveReady += (_, e) => Receive(e.Socket, Channel.Control);
        _stdin.ReceiveReady += (_, e) => Receive(e.Socket, Channel.Stdin);
        _hb.ReceiveReady += (_, e) =>
        {
            var frames = new List<byte[]>();
            while (e.Socket.TryReceiveMultipartBytes(TimeSpan.Zero, ref frames!)) e.Socket.SendMultipartBytes(frames);
        };
        _toPoller.ReceiveReady += (_, e) =>
        {
            while (e.Queue.TryDequeue(out var action, TimeSpan.Zero))
            {
                try { action(); }
                catch (Exception x) { _log.WriteLine($"lab kernel: sending failed: {x.GetType().Name}: {x.Message}"); }
            }
        };
        _poller = new NetMQPoller { _shell, _control, _stdin, _hb, _toPoller };
        _poller.RunAsync("lab kernel sockets");

        var shellLoop = Task.Run(() => ServeAsync(_shellQueue.Reader, HandleShellAsync));
        var controlLoop = Task.Run(() => ServeAsync(_controlQueue.Reader, HandleControlAsync));
        // Starting Roslyn now overlaps its ~1 s of JIT with the front end's connection handshake.
        _ = _engine.WarmUpAsync();
        _log.WriteLine($"lab kernel: listening on {_connection.Ip} (shell {Ports["shell_port"]}, iopub {Ports["iopub_port"]}, stdin {Ports["stdin_port"]}, control {Ports["control_port"]}, hb {Ports["hb_port"]})");

        try { await Task.Delay(Timeout.Infinite, _stop.Token); } catch (OperationCanceledException) { }
        _shellQueue.Writer.TryComplete();
        _controlQueue.Writer.TryComplete();
        _running?.Cancel.Cancel();
        await _engine.DisposeAsync();
        await FlushAsync(TimeSpan.FromSeconds(2));
        _poller.Stop();
        _poller.Dispose();
        foreach (var s in new NetMQSocket[] { _shell, _control, _stdin, _iopub, _hb }) s.Dispose();
        _toPoller.Dispose();
        await Task.WhenAny(Task.WhenAll(shellLoop, controlLoop), Task.Delay(TimeSpan.FromSeconds(2)));
        _stopped.TrySetResult();
        return 0;
    }

    int Bind(NetMQSocket socket, int port)
    {
        if (port == 0) return socket.BindRandomPort($"{_connection.Transport}://{(_connection.Ip.Contains(':') ? $"[{_connection.Ip}]" : _connection.Ip)}");
        socket.Bind(_connection.Endpoint(port));
        return port;
    }

    /// <summary>Completes once everything queued for sending so far has been handed to the sockets.</summary>
    Task FlushAsync(TimeSpan within)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _toPoller.Enqueue(() => done.TrySetResult());
        return Task.WhenAny(done.Task, Task.Delay(within));
    }

    // ---- receiving (poller thread) ----

    void Receive(NetMQSocket socket, Channel channel)
    {
        var frames = new List<byte[]>();
        while (socket.TryReceiveMultipartBytes(TimeSpan.Zero, ref frames!))
        {
            JupyterMessage msg;
            try { msg = _codec.Decode(frames); }
            catch (BadMessageException e)
            {
                _log.WriteLine($"lab kernel: dropped a message on {channel.ToString().ToLowerInvariant()}: {e.Message}");
                frames = new List<byte[]>();
                continue;
            }
            frames = new List<byte[]>();
            switch (channel)
            {
                case Channel.Shell: _shellQueue.Writer.TryWrite(msg); break;
                case Channel.Control: _controlQueue.Writer.TryWrite(msg); break;
                case Channel.Stdin: OnStdin(msg); break;
            }
        }
    }

    void OnStdin(JupyterMessage msg)
    {
        if (msg.MsgType != "input_reply") { _log.WriteLine($"lab kernel: ignored {msg.MsgType} on stdin"); return; }
        var pending = _running?.PendingInput;
        if (pending == null) { _log.WriteLine("lab kernel: an input_reply came while no cell was waiting for input"); return; }
        pending.TrySetResult((string?)msg.Content["value"] ?? "");
    }

    async Task ServeAsync(ChannelReader<JupyterMessage> queue, Func<JupyterMessage, Task> handle)
    {
        try
        {
            await foreach (var msg in queue.ReadAllAsync())
            {
                try { await handle(msg); }
                catch (Exception e) { _log.WriteLine($"lab kernel: {msg.MsgType} failed: {e}"); }
            }
        }
        catch (OperationCanceledException) { }
    }

    // ---- sending (any thread; the poller thread does the socket work, in the order queued) ----

    void Send(Channel channel, JupyterMessage msg)
    {
        var frames = _codec.Encode(msg);
        _toPoller.Enqueue(() =>
        {
            NetMQSocket? socket = channel switch
            {
                Channel.Shell => _shell, Channel.Control => _control, Channel.Stdin => _stdin, _ => _iopub,
            };
            socket?.SendMultipartBytes(frames);
        });
    }

    void Reply(Channel channel, JupyterMessage request, string msgType, JsonObject content)
    {
        var reply = JupyterMessage.Create(msgType, content, request, _session, request.Identities);
        var turn = channel switch { Channel.Shell => _shellTurn, Channel.Control => _controlTurn, _ => null };
        if (turn != null && ReferenceEquals(turn.Request, request) && turn.Reply == null) { turn.Reply = _codec.Encode(reply); return; }
        Send(channel, reply);
    }

    /// <summary>Starts handling <paramref name="msg"/>: publishes busy and holds its reply (a shutdown's reply goes at once, before the process ends).</summary>
    Turn? Begin(JupyterMessage msg)
    {
        Status("busy", msg);
        return msg.MsgType == "shutdown_request" ? null : new Turn(msg);
    }

    /// <summary>Sends the idle status, then the held reply, from one poller action so nothing of this process runs between them.
    /// Front ends wait for both (nbclient, jupyter_client's execute_interactive, JupyterLab's future) in either order.</summary>
    void End(Channel channel, JupyterMessage msg, Turn? turn)
    {
        var idle = JupyterMessage.Create("status", new JsonObject { ["execution_state"] = "idle" }, msg, _session);
        idle.Identities.Add(Encoding.UTF8.GetBytes($"kernel.{_session}.status"));
        var idleFrames = _codec.Encode(idle);
        var reply = turn?.Reply;
        _toPoller.Enqueue(() =>
        {
            _iopub?.SendMultipartBytes(idleFrames);
            if (reply != null) (channel == Channel.Shell ? _shell : _control)?.SendMultipartBytes(reply);
        });
    }

    void Publish(string msgType, JsonObject content, JupyterMessage? parent)
    {
        var msg = JupyterMessage.Create(msgType, content, parent, _session);
        msg.Identities.Add(Encoding.UTF8.GetBytes($"kernel.{_session}.{msgType}"));
        Send(Channel.IOPub, msg);
    }

    void Status(string state, JupyterMessage parent) => Publish("status", new JsonObject { ["execution_state"] = state }, parent);

    static bool IsSilent(JupyterMessage m) => (bool?)m.Content["silent"] ?? false;

    // ---- shell ----

    async Task HandleShellAsync(JupyterMessage msg)
    {
        var turn = _shellTurn = Begin(msg);
        try
        {
            switch (msg.MsgType)
            {
                case "execute_request": await ExecuteAsync(msg); break;
                case "kernel_info_request": KernelInfo(Channel.Shell, msg); break;
                case "complete_request": await CompleteAsync(msg); break;
                case "inspect_request": await InspectAsync(msg); break;
                case "is_complete_request": Reply(Channel.Shell, msg, "is_complete_reply", IsCompleteReply((string?)msg.Content["code"] ?? "")); break;
                case "history_request":
                    Reply(Channel.Shell, msg, "history_reply", new JsonObject { ["status"] = "ok", ["history"] = _history.Query(msg.Content) });
                    break;
                case "comm_info_request":
                    Reply(Channel.Shell, msg, "comm_info_reply", new JsonObject { ["status"] = "ok", ["comms"] = new JsonObject() });
                    break;
                case "comm_open":
                    // The lab registers no comm targets: close it at once, as the spec asks of a kernel without the target.
                    Publish("comm_close", new JsonObject { ["comm_id"] = (string?)msg.Content["comm_id"] ?? "", ["data"] = new JsonObject() }, msg);
                    break;
                case "comm_msg": case "comm_close": break;
                case "connect_request":
                    Reply(Channel.Shell, msg, "connect_reply", new JsonObject
                    {
                        ["status"] = "ok", ["shell_port"] = Ports["shell_port"], ["iopub_port"] = Ports["iopub_port"],
                        ["stdin_port"] = Ports["stdin_port"], ["hb_port"] = Ports["hb_port"], ["control_port"] = Ports["control_port"],
                    });
                    break;
                case "shutdown_request": await ShutdownAsync(Channel.Shell, msg); break;
                default: _log.WriteLine($"lab kernel: unknown message type {msg.MsgType} on shell"); break;
            }
        }
        finally { _shellTurn = null; End(Channel.Shell, msg, turn); }
    }

    void KernelInfo(Channel channel, JupyterMessage msg)
    {
        // A front end that attached anew (a reloaded page, nbclient, a console) has no plotly.js yet: the next chart carries it.
        lock (_clientSessions)
            if (_clientSessions.Add(msg.Session) && _clientSessions.Count > 1) _engine.ResetPlotlySession();
        Reply(channel, msg, "kernel_info_reply", KernelInfoContent());
    }

    public static JsonObject KernelInfoContent()
    {
        var version = typeof(JupyterKernel).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion?.Split('+')[0] ?? "1.0";
        var csharp = LanguageVersion.Latest.MapSpecifiedToEffectiveVersion().ToDisplayString();
        return new JsonObject
        {
            ["status"] = "ok",
            ["protocol_version"] = JupyterMessage.ProtocolVersion,
            ["implementation"] = KernelSpec.Name,
            ["implementation_version"] = version,
            ["language_info"] = LanguageInfo(csharp),
            ["banner"] = $"Backend Accept Lab: C# {csharp} (Roslyn scripting) on .NET {Environment.Version}. display(x) shows a value, display(x).Update(y) replaces it.",
            ["debugger"] = false,
            ["help_links"] = new JsonArray(
                new JsonObject { ["text"] = "C# language reference", ["url"] = "https://learn.microsoft.com/dotnet/csharp/language-reference/" },
                new JsonObject { ["text"] = ".NET API browser", ["url"] = "https://learn.microsoft.com/dotnet/api/" }),
        };
    }

    public static JsonObject LanguageInfo(string? version = null) => new()
    {
        ["name"] = "C#",
        ["version"] = version ?? LanguageVersion.Latest.MapSpecifiedToEffectiveVersion().ToDisplayString(),
        ["mimetype"] = "text/x-csharp",
        ["file_extension"] = ".cs",
        ["pygments_lexer"] = "csharp",
        ["codemirror_mode"] = "text/x-csharp",
    };

    async Task ExecuteAsync(JupyterMessage msg)
    {
        var code = (string?)msg.Content["code"] ?? "";
        var silent = IsSilent(msg);
        var storeHistory = !silent && ((bool?)msg.Content["store_history"] ?? true);
        var allowStdin = (bool?)msg.Content["allow_stdin"] ?? false;
        var stopOnError = (bool?)msg.Content["stop_on_error"] ?? true;
        if (storeHistory) Interlocked.Increment(ref _executionCount);
        var count = Math.Max(_executionCount, 1);
        if (!silent)
        {
            _lastExecute = msg;
            Publish("execute_input", new JsonObject { ["code"] = code, ["execution_count"] = count }, msg);
        }

        var run = new RunningCell(msg);
        _running = run;
        CellResult result;
        try
        {
            var ctx = new CellContext
            {
                Name = "notebook",
                CellNumber = count,
                Stdout = silent ? _ => { } : text => Publish("stream", new JsonObject { ["name"] = "stdout", ["text"] = text }, msg),
                Stderr = silent ? _ => { } : text => Publish("stream", new JsonObject { ["name"] = "stderr", ["text"] = text }, msg),
                Display = silent ? (_, _) => { } : (bundle, id) => { Publish("display_data", DisplayContent(bundle, id), msg); TrackPlotly(id, bundle); },
                UpdateDisplay = silent ? (_, _) => { } : (id, bundle) => { Publish("update_display_data", DisplayContent(bundle, id), msg); TrackPlotly(id, bundle); },
                Input = prompt => ReadInput(run, prompt, allowStdin),
            };
            result = await _engine.ExecuteAsync(code, ctx, run.Cancel.Token);
        }
        finally { _running = null; }
        if (!silent) KeepPlotlyJsInLastFrames(msg);

        if (result.Value != null && !silent)
            Publish("execute_result", new JsonObject
            {
                ["execution_count"] = count, ["data"] = Data(result.Value), ["metadata"] = new JsonObject(),
            }, msg);

        if (result.Succeeded)
        {
            if (storeHistory) _history.Add(count, code, result.Value?.Text);
            Reply(Channel.Shell, msg, "execute_reply", new JsonObject
            {
                ["status"] = "ok", ["execution_count"] = count, ["user_expressions"] = new JsonObject(), ["payload"] = new JsonArray(),
            });
            return;
        }

        if (storeHistory) _history.Add(count, code, null);
        var ename = result.Status == CellStatus.Cancelled && run.Interrupted ? "Interrupted" : result.ErrorName ?? "Error";
        var evalue = result.ErrorValue ?? "";
        var traceback = new JsonArray();
        foreach (var line in result.Traceback.Count > 0 ? result.Traceback : new[] { evalue }) traceback.Add(line);
        if (!silent)
            Publish("error", new JsonObject { ["ename"] = ename, ["evalue"] = evalue, ["traceback"] = traceback.DeepClone() }, msg);
        // Abort what was queued before the client can see this reply: a request it sends after reading the reply
        // (the next cell, once the interrupt is answered) must run, not be aborted (seen in CI as next_status "aborted").
        if (stopOnError) AbortQueuedExecutes();
        Reply(Channel.Shell, msg, "execute_reply", new JsonObject
        {
            ["status"] = "error", ["execution_count"] = count, ["ename"] = ename, ["evalue"] = evalue, ["traceback"] = traceback,
            ["user_expressions"] = new JsonObject(), ["payload"] = new JsonArray(),
        });
    }

    /// <summary>After an error with stop_on_error, execute requests already queued are not run (ipykernel's behaviour): each gets an "aborted" reply.</summary>
    void AbortQueuedExecutes()
    {
        var keep = new List<JupyterMessage>();
        while (_shellQueue.Reader.TryRead(out var queued))
        {
            if (queued.MsgType != "execute_request") { keep.Add(queued); continue; }
            Status("busy", queued);
            Reply(Channel.Shell, queued, "execute_reply", new JsonObject { ["status"] = "aborted" });
            Status("idle", queued);
        }
        // Other requests stay, in order, behind anything that arrived meanwhile (they are not order-sensitive to executes).
        foreach (var m in keep) _shellQueue.Writer.TryWrite(m);
    }

    string? ReadInput(RunningCell run, string prompt, bool allowStdin)
    {
        if (!allowStdin)
            throw new StdinNotSupportedException("stdin not supported: this front end does not accept input (allow_stdin is false), so Console.ReadLine has nothing to read");
        var pending = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        run.PendingInput = pending;
        try
        {
            Send(Channel.Stdin, JupyterMessage.Create("input_request", new JsonObject { ["prompt"] = prompt, ["password"] = false },
                run.Request, _session, run.Request.Identities));
            return pending.Task.WaitAsync(run.Cancel.Token).GetAwaiter().GetResult();
        }
        finally { run.PendingInput = null; }
    }

    void TrackPlotly(string id, MimeBundle bundle)
    {
        bool carries = PlotlyJs.IsIn(bundle.Html);
        lock (_plotlyDisplays)
            if (carries || _plotlyDisplays.ContainsKey(id)) _plotlyDisplays[id] = (bundle, carries);
    }

    /// <summary>
    /// The engine puts plotly.js in the session's first chart only. When that chart is a live display, later frames
    /// replace it (update_display_data), and a front end that keeps the last frame (nbclient, VS Code, JupyterLab) saves a
    /// notebook in which no output carries plotly.js: reopened, its charts stay blank (seen: chapter 04 through nbclient).
    /// So once a cell is done, a display that carried plotly.js and whose latest frame does not gets that frame again,
    /// with plotly.js: once per such display, not on every frame (a live chart redraws several times a second).
    /// </summary>
    void KeepPlotlyJsInLastFrames(JupyterMessage parent)
    {
        List<(string Id, MimeBundle Bundle)> redo;
        lock (_plotlyDisplays)
        {
            redo = _plotlyDisplays.Where(d => !d.Value.LastCarries).Select(d => (d.Key, Outputs.KeepPlotlyJs(Outputs.WithPlotlyJs, d.Value.Last))).ToList();
            foreach (var (id, bundle) in redo) _plotlyDisplays[id] = (bundle, true);
        }
        foreach (var (id, bundle) in redo) Publish("update_display_data", DisplayContent(bundle, id), parent);
    }

    static JsonObject DisplayContent(MimeBundle bundle, string displayId) => new()
    {
        ["data"] = Data(bundle), ["metadata"] = new JsonObject(), ["transient"] = new JsonObject { ["display_id"] = displayId },
    };

    /// <summary>A mime bundle as Jupyter's "data": JSON mime types as JSON, the rest as strings.</summary>
    public static JsonObject Data(MimeBundle bundle)
    {
        var data = new JsonObject();
        foreach (var (mime, content) in bundle)
        {
            if (mime == "application/json" || mime.EndsWith("+json", StringComparison.Ordinal))
            {
                try { data[mime] = JsonNode.Parse(content); continue; }
                catch (JsonException) { }
            }
            data[mime] = content;
        }
        return data;
    }

    async Task CompleteAsync(JupyterMessage msg)
    {
        var code = (string?)msg.Content["code"] ?? "";
        var cursorPos = (int?)msg.Content["cursor_pos"] ?? code.Length;
        var cursor = CodePoints.ToUtf16(code, cursorPos);
        IReadOnlyList<Completion> items;
        try { items = await _engine.CompleteAsync(code, cursor).WaitAsync(TimeSpan.FromSeconds(30)); }
        catch (Exception e) { _log.WriteLine($"lab kernel: completion failed: {e.Message}"); items = Array.Empty<Completion>(); }
        var start = items.Count > 0 ? items[0].Start : cursor;
        var end = items.Count > 0 ? items[0].End : cursor;
        var matches = new JsonArray();
        var types = new JsonArray();
        foreach (var c in items.Where(c => c.Start == start && c.End == end))
        {
            matches.Add(c.Text);
            types.Add(new JsonObject
            {
                ["start"] = CodePoints.FromUtf16(code, start), ["end"] = CodePoints.FromUtf16(code, end),
                ["text"] = c.Text, ["type"] = c.Kind.ToLowerInvariant(), ["signature"] = "",
            });
        }
        Reply(Channel.Shell, msg, "complete_reply", new JsonObject
        {
            ["status"] = "ok", ["matches"] = matches,
            ["cursor_start"] = CodePoints.FromUtf16(code, start), ["cursor_end"] = CodePoints.FromUtf16(code, end),
            ["metadata"] = new JsonObject { ["_jupyter_types_experimental"] = types },
        });
    }

    async Task InspectAsync(JupyterMessage msg)
    {
        var code = (string?)msg.Content["code"] ?? "";
        var cursor = CodePoints.ToUtf16(code, (int?)msg.Content["cursor_pos"] ?? code.Length);
        Inspection? found = null;
        try
        {
            found = await _engine.InspectAsync(code, cursor).WaitAsync(TimeSpan.FromSeconds(30));
            // A cursor just after a name (where front ends put it) inspects that name.
            if (found == null && cursor > 0) found = await _engine.InspectAsync(code, cursor - 1).WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (Exception e) { _log.WriteLine($"lab kernel: inspection failed: {e.Message}"); }
        var data = new JsonObject();
        if (found != null)
        {
            data["text/plain"] = found.Text;
            data["text/markdown"] = $"```csharp\n{found.Signature}\n```" + (found.Documentation is { Length: > 0 } d ? $"\n\n{d}" : "");
        }
        Reply(Channel.Shell, msg, "inspect_reply", new JsonObject
        {
            ["status"] = "ok", ["found"] = found != null, ["data"] = data, ["metadata"] = new JsonObject(),
        });
    }

    static readonly CSharpParseOptions ScriptParse = new(LanguageVersion.Latest, kind: SourceCodeKind.Script);

    /// <summary>is_complete_reply: "incomplete" (with an indent) while a brace, string or statement is open; "invalid" for a whole submission with syntax errors.</summary>
    public static JsonObject IsCompleteReply(string code)
    {
        if (!NotebookEngine.IsComplete(code))
        {
            var depth = 0;
            foreach (var ch in code) depth += ch switch { '{' or '(' or '[' => 1, '}' or ')' or ']' => -1, _ => 0 };
            return new JsonObject { ["status"] = "incomplete", ["indent"] = new string(' ', 4 * Math.Max(0, depth)) };
        }
        var src = CellSource.Parse(code);
        if (src.Error != null) return new JsonObject { ["status"] = "invalid" };
        if (!src.IsMarkdown && CSharpSyntaxTree.ParseText(src.Code, ScriptParse).GetDiagnostics().Any(d => d.Severity == DiagnosticSeverity.Error))
            return new JsonObject { ["status"] = "invalid" };
        return new JsonObject { ["status"] = "complete" };
    }

    // ---- control ----

    async Task HandleControlAsync(JupyterMessage msg)
    {
        var turn = _controlTurn = Begin(msg);
        try
        {
            switch (msg.MsgType)
            {
                case "interrupt_request":
                    if (_running is { } run) { run.Interrupted = true; run.Cancel.Cancel(); }
                    Reply(Channel.Control, msg, "interrupt_reply", new JsonObject { ["status"] = "ok" });
                    break;
                case "shutdown_request": await ShutdownAsync(Channel.Control, msg); break;
                case "kernel_info_request": KernelInfo(Channel.Control, msg); break;
                case "debug_request":
                    Reply(Channel.Control, msg, "debug_reply", new JsonObject { ["status"] = "error", ["ename"] = "NotSupported", ["evalue"] = "the lab's kernel has no debugger", ["traceback"] = new JsonArray() });
                    break;
                default: _log.WriteLine($"lab kernel: unknown message type {msg.MsgType} on control"); break;
            }
        }
        finally { _controlTurn = null; End(Channel.Control, msg, turn); }
    }

    /// <summary>
    /// Stops what the session started and ends the process, for a final shutdown and for a restart alike: front ends
    /// restart a kernel by asking it to shut down and starting a fresh process (a fresh engine, a fresh plotly.js session).
    /// </summary>
    async Task ShutdownAsync(Channel channel, JupyterMessage msg)
    {
        var restart = (bool?)msg.Content["restart"] ?? false;
        if (_running is { } run) { run.Interrupted = true; run.Cancel.Cancel(); }
        await _engine.DisposeAsync();
        var content = new JsonObject { ["status"] = "ok", ["restart"] = restart };
        Reply(channel, msg, "shutdown_reply", content);
        Publish("shutdown_reply", (JsonObject)content.DeepClone(), msg);
        await FlushAsync(TimeSpan.FromSeconds(2));
        _stop.Cancel();
    }

    /// <summary>Completes when the kernel has stopped serving.</summary>
    public Task Stopped => _stopped.Task;
}

/// <summary>A cell read Console.In while the front end does not accept input (allow_stdin false).</summary>
public sealed class StdinNotSupportedException(string message) : InvalidOperationException(message);

/// <summary>Jupyter counts cursor positions in Unicode code points (protocol 5.2+); C# strings index UTF-16 code units.</summary>
static class CodePoints
{
    public static int ToUtf16(string s, int codePoints)
    {
        int i = 0;
        for (int n = 0; n < codePoints && i < s.Length; n++) i += char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? 2 : 1;
        return i;
    }

    public static int FromUtf16(string s, int index)
    {
        int n = 0;
        for (int i = 0; i < index && i < s.Length; i++, n++)
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) i++;
        return n;
    }
}
