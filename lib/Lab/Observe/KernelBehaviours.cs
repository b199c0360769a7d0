using System.Diagnostics;
using System.Net;
using Lab.Sockets;

namespace Lab.Observe;

/// <summary>
/// What a chapter's check can rely on from the kernel it runs on. Readers' kernels are not the lab's: a devcontainer runs
/// on its host's kernel (WSL2 5.15 or 6.6, Docker Desktop's VM, a Codespace's host). Each behaviour that changed across
/// versions is read here from the kernel itself, by a sysctl that exists or not, or by a short experiment, never from the
/// version number alone (fixes are backported to stable kernels). `lab doctor` lists them.
/// </summary>
public static class KernelBehaviours
{
    static readonly Lazy<int> MeasuredSynQueueExtra = new(() => MeasureQueueExtra(synQueue: true));
    static readonly Lazy<int> MeasuredAcceptQueueExtra = new(() => MeasureQueueExtra(synQueue: false));
    static readonly Lazy<string?> MeasuredIoUring = new(IoUring.WhyUnavailable);

    /// <summary>This kernel's release (uname -r).</summary>
    public static string Release => File.ReadAllText("/proc/sys/kernel/osrelease").Trim();

    /// <summary>
    /// net.ipv4.tcp_syn_linear_timeouts, or null where the sysctl does not exist (before Linux 6.5): then a client's SYN
    /// timeout doubles from the first retransmission on.
    /// </summary>
    public static int? SynLinearTimeouts => SysctlOrNull("net.ipv4.tcp_syn_linear_timeouts");

    /// <summary>net.ipv4.tcp_migrate_req, or null where it does not exist (before Linux 5.14): then a closed SO_REUSEPORT
    /// listener's queued connections are reset instead of moved to another listener of the group.</summary>
    public static int? MigrateReq => SysctlOrNull("net.ipv4.tcp_migrate_req");

    /// <summary>
    /// How many connections beyond the backlog this kernel's SYN queue holds when SYNs arrive one at a time: 1 where
    /// <c>inet_csk_reqsk_queue_is_full</c> tests "more than the backlog" (current kernels, and stable kernels it was
    /// backported to), 0 where it tests "at least the backlog" (older kernels). Measured once per process, without
    /// privileges, on loopback in this network namespace (see <see cref="MeasureQueueExtra"/>).
    /// </summary>
    public static int SynQueueExtra => MeasuredSynQueueExtra.Value;

    /// <summary>The same for the accept queue (<c>sk_acceptq_is_full</c>): 1 on every kernel the lab knows of.</summary>
    public static int AcceptQueueExtra => MeasuredAcceptQueueExtra.Value;

    /// <summary>
    /// Null when io_uring's multishot accept works here (measured once per process: a ring took a loopback connection
    /// and stayed armed); else why not, in the reader's terms (the sysctl that disables it, a seccomp profile, an
    /// older kernel).
    /// </summary>
    public static string? IoUringUnavailable => MeasuredIoUring.Value;

    /// <summary>
    /// The gap in seconds before SYN number <paramref name="retransmission"/> + 1 (1 = the first retransmission): 1 s for
    /// the first <paramref name="linearTimeouts"/> + 1 retransmissions, then doubling (tcp_retransmit_timer in
    /// net/ipv4/tcp_timer.c). With no linear timeouts (a kernel before 6.5, or the sysctl at 0): 1, 2, 4, 8 s.
    /// </summary>
    public static double SynRetransmitGap(int retransmission, int? linearTimeouts, double initialTimeout = 1.0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(retransmission, 1);
        var linear = linearTimeouts ?? 0;
        return retransmission <= linear + 1 ? initialTimeout : initialTimeout * Math.Pow(2, retransmission - linear - 1);
    }

    /// <summary>One behaviour as `lab doctor` and the chapters state it.</summary>
    /// <param name="Name">What it is about.</param>
    /// <param name="ThisKernel">What this kernel does, read or measured here.</param>
    /// <param name="Newer">What current kernels do, when this one differs; null when it does the same.</param>
    /// <param name="HowKnown">How the lab found out: the sysctl read, or the experiment run.</param>
    /// <param name="Chapters">The chapters whose checks depend on it.</param>
    public sealed record Behaviour(string Name, string ThisKernel, string? Newer, string HowKnown, string Chapters);

    /// <summary>Every version-dependent behaviour the chapters rely on, as this kernel has it.</summary>
    public static IReadOnlyList<Behaviour> All() =>
    [
        AcceptQueueBound(AcceptQueueExtra),
        SynQueueBound(SynQueueExtra),
        SynSchedule(SynLinearTimeouts),
        MigrateRequests(MigrateReq),
        IoUringAccept(IoUringUnavailable),
        new("pruning of a crowded SYN queue",
            "a request socket in a more-than-half-full SYN queue expires after 2 SYN-ACK retransmissions (about 7 s), not tcp_synack_retries",
            null, "not probed (it takes 7 s); reqsk_timer_handler has pruned this way since Linux 2.6", "04"),
    ];

    /// <summary>The accept queue's bound, from the measured extra.</summary>
    public static Behaviour AcceptQueueBound(int extra) => new("accept queue bound",
        extra == 1 ? "holds backlog + 1 connections (full when it holds more than the backlog)"
                   : $"holds backlog + {extra} connections",
        extra == 1 ? null : "current kernels hold backlog + 1",
        "measured: listen(2) on loopback, 4 clients one at a time", "00, 02, 03, 11");

    /// <summary>The SYN queue's bound, from the measured extra (1 on current kernels, 0 before the fix).</summary>
    public static Behaviour SynQueueBound(int extra) => new("SYN queue bound",
        extra == 1 ? "holds backlog + 1 half-open requests (full when it holds more than the backlog)"
                   : $"holds backlog{(extra == 0 ? "" : $" + {extra}")} half-open requests (full when it holds at least the backlog)",
        extra == 1 ? null : "current kernels, and stable kernels the fix was backported to, hold backlog + 1 (inet_csk_reqsk_queue_is_full tests \"more than\")",
        "measured: TCP_DEFER_ACCEPT listener with listen(2) on loopback, 3 clients one at a time", "04");

    /// <summary>The client's SYN schedule, from tcp_syn_linear_timeouts (null: the sysctl does not exist).</summary>
    public static Behaviour SynSchedule(int? linear) => new("SYN retransmission schedule",
        linear is null ? "a client resends its SYN after 1, 2, 4, 8 s … (doubling from the start)"
        : linear == 0 ? "tcp_syn_linear_timeouts = 0: a client resends its SYN after 1, 2, 4, 8 s … (doubling from the start)"
        : $"a client resends its SYN {linear + 1} times one second apart, then doubles the wait",
        linear is null ? "Linux 6.5 and later keep the first tcp_syn_linear_timeouts (default 4) timeouts at 1 s" : null,
        linear is null ? "net.ipv4.tcp_syn_linear_timeouts does not exist here" : $"net.ipv4.tcp_syn_linear_timeouts = {linear}", "01, 03");

    /// <summary>tcp_migrate_req, from the sysctl (null: it does not exist).</summary>
    public static Behaviour MigrateRequests(int? migrate) => new("SO_REUSEPORT request migration",
        migrate is null ? "closing one SO_REUSEPORT listener resets the connections in its queues"
        : migrate == 0 ? "tcp_migrate_req = 0: closing one SO_REUSEPORT listener resets the connections in its queues"
        : "closing one SO_REUSEPORT listener moves its queued connections to another listener of the group",
        migrate is null ? "Linux 5.14 and later can migrate them (net.ipv4.tcp_migrate_req = 1)" : null,
        migrate is null ? "net.ipv4.tcp_migrate_req does not exist here" : $"net.ipv4.tcp_migrate_req = {migrate}", "11");

    /// <summary>io_uring's accept path, from the measurement (null: multishot accept works).</summary>
    public static Behaviour IoUringAccept(string? unavailable) => new("io_uring multishot accept",
        unavailable is null ? "one IORING_OP_ACCEPT request takes every connection (IORING_ACCEPT_MULTISHOT): the IoUringAccept model runs"
                            : $"not usable here: {unavailable}",
        unavailable is null ? null : "Linux 5.19 and later, with kernel.io_uring_disabled = 0, accept with one multishot request; the IoUringAccept model and its cells are skipped here",
        "measured: a ring's multishot accept on a loopback listener, one client", "none yet (the IoUringAccept model: lab serve io-uring-accept, lab bench)");

    /// <summary>
    /// A check's claim for a queue bound: what it expects on this kernel, and, where this kernel is older, what newer
    /// kernels do, so a reader on an older kernel reads an explanation rather than a failure.
    /// </summary>
    public static string SynQueueClaim(int backlog, int extra) => extra == 1
        ? $"the SYN queue holds backlog + 1 = {backlog + 1} half-open requests"
        : $"the SYN queue holds {backlog + extra} half-open requests on this kernel ({Release}: full at the backlog); current kernels hold backlog + 1 = {backlog + 1}";

    /// <summary>
    /// Measures how many connections beyond a small backlog one queue holds when they arrive one at a time. Accept
    /// queue: a plain listener, clients connect and nobody accepts. SYN queue: a TCP_DEFER_ACCEPT listener, where a
    /// client that sends no data stays a request socket (SYN-RECV) after its handshake, so the SYN queue fills without
    /// spoofed packets or privileges. Bounded: 3 or 4 clients, at most 0.5 s each.
    /// </summary>
    public static int MeasureQueueExtra(bool synQueue)
    {
        // The SYN queue gets backlog + 1 clients, not more: the one after a full SYN queue is answered with a cookie,
        // and the kernel logs "Possible SYN flooding" for it. backlog + 1 is enough to tell ">" from ">=".
        const int backlog = 2;
        var clients = synQueue ? backlog + 1 : backlog + 2;
        using var listener = Listener.Open(new IPEndPoint(IPAddress.Loopback, 0), backlog,
            new ListenerOptions { DeferAcceptSeconds = synQueue ? 30 : 0 });
        var conns = new List<Connection>();
        try
        {
            using var reader = new ListenQueueReader(listener.LocalEndPoint.Port, listener.LocalEndPoint.Address, includeSynQueue: true, track: false);
            int Held() { var r = reader.Read(); return synQueue ? r.SynQueue : r.AcceptQueue; }
            for (int i = 0; i < clients; i++)
            {
                var before = Held();
                conns.Add(Client.BeginConnect(listener.LocalEndPoint));
                // One at a time: wait until this one is held, or 0.5 s (it was refused a place, and retries its SYN later).
                var clock = Stopwatch.StartNew();
                while (Held() == before && clock.Elapsed < TimeSpan.FromMilliseconds(500)) Thread.Sleep(2);
            }
            Thread.Sleep(20);   // a handshake still in the softirq lands before the count
            return Held() - backlog;
        }
        finally { foreach (var c in conns) c.Dispose(); }
    }

    static int? SysctlOrNull(string name) =>
        Sysctl.Exists(name) ? (int)Sysctl.ReadInt(name) : null;
}
