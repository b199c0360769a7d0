using Lab.Display;
using System.Diagnostics;
using System.Net;
using Lab.Charts;
using Lab.Hosts;
using Lab.Interop;
using Lab.Observe;
using Lab.Packets;
using Lab.Sockets;

namespace Lab.Experiments;

/// <summary>What /proc says about one thread: its scheduler state and the kernel function it sleeps in.</summary>
/// <param name="Tid">The thread id (gettid).</param>
/// <param name="State">The state letter from /proc/self/task/TID/stat: R running, S sleeping (interruptible), D disk sleep...</param>
/// <param name="WaitChannel">/proc/self/task/TID/wchan: the kernel function the thread waits in ("0" when running).</param>
/// <param name="Syscall">The first field of /proc/self/task/TID/syscall: the system call number it is in (288 = accept4 on x86_64).</param>
public sealed record ThreadLook(int Tid, char State, string WaitChannel, string Syscall)
{
    /// <summary>Reads the thread's state, wait channel and system call now.</summary>
    public static ThreadLook Of(int tid)
    {
        var stat = File.ReadAllText($"/proc/self/task/{tid}/stat");
        // "TID (comm) S ...": the state follows the last ')' (comm may hold spaces or parentheses).
        char state = stat[stat.LastIndexOf(')') + 2];
        var wchan = File.ReadAllText($"/proc/self/task/{tid}/wchan").Trim();
        var syscall = File.ReadAllText($"/proc/self/task/{tid}/syscall").Split(' ')[0].Trim();
        return new ThreadLook(tid, state, wchan, syscall);
    }

    /// <summary>True when the thread is asleep inside accept in the kernel.</summary>
    public bool InAccept => State == 'S' && (WaitChannel.Contains("accept") || WaitChannel.Contains("wait_for_connect") || (WaitChannel == "0" && Syscall == "288"));
}

/// <summary>
/// A thread calling the blocking <see cref="Listener.Accept"/> so a cell can look at it while it waits:
/// <see cref="Look"/> reads its state and wait channel from /proc.
/// </summary>
public sealed class ParkedAcceptor : IDisposable
{
    readonly CancellationTokenSource _cts = new();
    readonly Thread _thread;
    int _tid;
    int _disposed;
    readonly Stopwatch _clock = Stopwatch.StartNew();

    ParkedAcceptor(Listener listener, TimeSpan timeout)
    {
        _thread = new Thread(() =>
        {
            Volatile.Write(ref _tid, unistd.gettid());
            try { Result = listener.Accept(timeout, _cts.Token); }
            catch (Exception e) { Error = e; }
            WaitedFor = _clock.Elapsed;
        }) { IsBackground = true, Name = "lab-parked-accept" };
        _thread.Start();
        SpinWait.SpinUntil(() => Volatile.Read(ref _tid) != 0, TimeSpan.FromSeconds(5));
        LabResources.Track(this, "ParkedAcceptor");
    }

    /// <summary>Starts a thread in a blocking accept on <paramref name="listener"/> (a blocking listener), for at most <paramref name="timeout"/>.</summary>
    public static ParkedAcceptor Start(Listener listener, TimeSpan? timeout = null)
    {
        if (listener.NonBlocking) throw new ArgumentException("Open the listener without NonBlocking: a blocking accept waits in accept4 in the kernel.", nameof(listener));
        return new ParkedAcceptor(listener, timeout ?? TimeSpan.FromSeconds(20));
    }

    /// <summary>The waiting thread's id.</summary>
    public int Tid => Volatile.Read(ref _tid);
    /// <summary>What accept returned, once it has.</summary>
    public AcceptResult? Result { get; private set; }
    /// <summary>What accept threw, if anything.</summary>
    public Exception? Error { get; private set; }
    /// <summary>How long the accept waited, once it returned.</summary>
    public TimeSpan? WaitedFor { get; private set; }
    /// <summary>True while the thread is still inside Accept.</summary>
    public bool Waiting => _thread.IsAlive;

    /// <summary>
    /// Looks at the thread until /proc shows it asleep in accept (at most <paramref name="within"/>; the library
    /// re-enters accept4 every 100 ms, so a single look can catch it between two calls).
    /// </summary>
    public ThreadLook Look(TimeSpan? within = null)
    {
        var until = Stopwatch.GetTimestamp() + (long)((within ?? TimeSpan.FromSeconds(2)).TotalSeconds * Stopwatch.Frequency);
        ThreadLook look;
        ThreadLook? inAccept = null;
        do
        {
            // Prefer a reading that names the kernel function; wchan reads "0" in the instants the thread is between
            // two accept4 calls or being woken.
            look = ThreadLook.Of(Tid);
            if (look.InAccept && look.WaitChannel != "0") return look;
            if (look.InAccept) inAccept ??= look;
            Thread.Sleep(5);
        } while (Stopwatch.GetTimestamp() < until && _thread.IsAlive);
        return inAccept ?? look;
    }

    /// <summary>Waits for the accept to return.</summary>
    public AcceptResult? Join(TimeSpan timeout)
    {
        _thread.Join(timeout);
        if (Error != null) throw Error;
        return Result;
    }

    /// <summary>Cancels the accept (within one 100 ms slice) and disposes what it accepted.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;   // twice is harmless (a chapter's clean-up cell, then Keep.One)
        _cts.Cancel();
        _thread.Join(TimeSpan.FromSeconds(2));
        Result?.ConnectionOrNull?.Dispose();
        _cts.Dispose();
        LabResources.Untrack(this);
    }
}

/// <summary>One client of <see cref="FullQueueLatency"/>.</summary>
/// <param name="Client">0, 1, 2...</param>
/// <param name="StartedAt">When its connect began, seconds from the start.</param>
/// <param name="ConnectSeconds">How long until its own socket was ESTABLISHED (null: still in SYN-SENT at the end).</param>
/// <param name="SynRetransmits">Retransmissions its socket counted (tcpi_total_retrans): resent SYNs.</param>
/// <param name="AcceptedAt">When the application accepted it, seconds from the start (null: never).</param>
public sealed record ClientLatency(int Client, double StartedAt, double? ConnectSeconds, long SynRetransmits, double? AcceptedAt);

/// <summary>
/// What clients see when the accept queue is full: the queue is filled first, then clients start (a little apart)
/// while the application accepts one connection every <c>acceptEvery</c>. Each client's connect time is read from its
/// own socket's state. Runs in a lab host so the counters are this experiment's alone.
/// </summary>
public sealed class FullQueueLatency
{
    FullQueueLatency(IReadOnlyList<ClientLatency> clients, CounterDelta counters, double elapsed, int linear)
    { Clients = clients; Counters = counters; ElapsedSeconds = elapsed; SynLinearTimeouts = linear; }

    /// <summary>net.ipv4.tcp_syn_linear_timeouts in the host during the run.</summary>
    public int SynLinearTimeouts { get; }

    /// <summary>
    /// When a connecting socket sends its <paramref name="retransmission"/>-th SYN retransmission, in seconds after the
    /// first SYN, per net/ipv4/tcp_timer.c: the RTO starts at TCP_TIMEOUT_INIT (1 s) and stays there while the socket
    /// is in SYN-SENT and has not yet timed out more than tcp_syn_linear_timeouts times; then it doubles.
    /// linear 0: 1, 3, 7, 15 s. linear 4 (the default): 1, 2, 3, 4, 5, 7, 11 s.
    /// </summary>
    public static double SynRetransmitAt(int retransmission, int linear) =>
        retransmission <= linear + 1 ? retransmission : linear + 1 + Math.Pow(2, retransmission - linear) - 2;

    public IReadOnlyList<ClientLatency> Clients { get; }
    /// <summary>The host's counters that changed during the run (ListenOverflows, ListenDrops, Tcp.OutRsts...).</summary>
    public CounterDelta Counters { get; }
    public double ElapsedSeconds { get; }

    /// <summary>Runs it in <paramref name="host"/>, bounded by <paramref name="maxDuration"/> (at most 20 s).</summary>
    public static FullQueueLatency Run(NetHost host, int backlog, int clients, TimeSpan startApart, TimeSpan acceptEvery, TimeSpan maxDuration,
        int? synLinearTimeouts = null)
    {
        if (maxDuration <= TimeSpan.Zero || maxDuration > TimeSpan.FromSeconds(20)) throw new ArgumentOutOfRangeException(nameof(maxDuration), maxDuration, "At most 20 s.");
        if (clients is < 1 or > 50) throw new ArgumentOutOfRangeException(nameof(clients), clients, "1 to 50 clients.");
        return host.Run(() =>
        {
            // Set in the host's namespace only; restored when the run ends.
            using var linearScope = synLinearTimeouts is int l ? Sysctl.Set("net.ipv4.tcp_syn_linear_timeouts", l) : null;
            int linear = (int)Sysctl.ReadInt("net.ipv4.tcp_syn_linear_timeouts");
            using var listener = Listener.Open("127.0.0.1:0", backlog, new ListenerOptions { NonBlocking = true });
            // Fill the accept queue: backlog+1 connections complete their handshakes and wait there.
            var fillers = new List<Connection>();
            var conns = new List<Connection>();
            var accepted = new List<Connection>();
            try
            {
                for (int i = 0; i <= backlog; i++) fillers.Add(Client.Connect(listener.LocalEndPoint, TimeSpan.FromSeconds(2)));
                var spin = Stopwatch.StartNew();
                while (!listener.ReadAcceptQueue().Full && spin.Elapsed < TimeSpan.FromSeconds(2)) Thread.Sleep(1);

                _ = fillers[0].Info(); // warm up, so the clients start on time
                var before = NetCounters.Read();
                var clock = Stopwatch.StartNew();
                var started = new double[clients];
                var done = new double?[clients];
                var retrans = new long[clients];
                var acceptedAt = new Dictionary<int, double>(); // client port -> time
                var portOf = new int[clients];
                var nextAccept = acceptEvery / 2;
                while (clock.Elapsed < maxDuration)
                {
                    var now = clock.Elapsed;
                    if (conns.Count < clients && now >= startApart * conns.Count)
                    {
                        started[conns.Count] = now.TotalSeconds;
                        var c = Client.BeginConnect(listener.LocalEndPoint);
                        portOf[conns.Count] = c.LocalEndPoint.Port;
                        conns.Add(c);
                    }
                    for (int i = 0; i < conns.Count; i++)
                    {
                        if (done[i] != null) continue;
                        var info = conns[i].Info();
                        if (info.State == TcpState.Established) { done[i] = clock.Elapsed.TotalSeconds - started[i]; retrans[i] = info.Retrans; }
                        else retrans[i] = info.Retrans;
                    }
                    if (now >= nextAccept)
                    {
                        if (listener.TryAccept() is AcceptResult.Accepted a)
                        {
                            accepted.Add(a.Connection);
                            acceptedAt[a.Connection.RemoteEndPoint.Port] = clock.Elapsed.TotalSeconds;
                        }
                        nextAccept += acceptEvery;
                    }
                    if (conns.Count == clients && done.All(d => d != null)) break;
                    Thread.Sleep(2);
                }
                var elapsed = clock.Elapsed.TotalSeconds;
                // Total retransmissions of the SYN: tcpi_total_retrans, read once more at the end.
                for (int i = 0; i < conns.Count; i++) retrans[i] = TotalRetrans(conns[i], retrans[i]);
                var counters = before.Diff(NetCounters.Read());
                var rows = Enumerable.Range(0, conns.Count).Select(i => new ClientLatency(i, Math.Round(started[i], 3),
                    done[i] is { } d ? Math.Round(d, 3) : null, retrans[i],
                    acceptedAt.TryGetValue(portOf[i], out var at) ? Math.Round(at, 3) : null)).ToList();
                return new FullQueueLatency(rows, counters, elapsed, linear);
            }
            finally
            {
                foreach (var c in fillers) c.Dispose();
                foreach (var c in conns) c.Dispose();
                foreach (var c in accepted) c.Dispose();
            }
        });
    }

    static long TotalRetrans(Connection c, long fallback)
    {
        try { return TcpInfo.ReadRaw(c.Handle, out _, "client").tcpi_total_retrans; } catch { return fallback; }
    }

    /// <summary>Each client's connect time, as bars.</summary>
    public Figure Chart() => LabCharts.Bars($"Connect time per client, accept queue full (tcp_syn_linear_timeouts = {SynLinearTimeouts})",
        "seconds until the client's socket was ESTABLISHED",
        Clients.Select(c => ($"client {c.Client} ({c.SynRetransmits} SYN resent)", c.ConnectSeconds ?? ElapsedSeconds)));

    /// <summary>Several runs side by side: each client's connect time.</summary>
    public static Figure Compare(params FullQueueLatency[] runs) => LabCharts.GroupedBars(
        "Connect time per client while the accept queue is full", "seconds until ESTABLISHED (unfinished: run length)",
        Enumerable.Range(0, runs.Max(r => r.Clients.Count)).Select(i => $"client {i}").ToList(),
        runs.Select(r => ($"tcp_syn_linear_timeouts = {r.SynLinearTimeouts}",
            (IReadOnlyList<double>)r.Clients.Select(c => c.ConnectSeconds ?? r.ElapsedSeconds).ToList())).ToArray());
}
