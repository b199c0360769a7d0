using Lab.Charts;
using Lab.Load;
using Lab.Topologies;

namespace Lab.Experiments;

/// <summary>
/// What one thread of a server did, counted from the topology's events: each event carries the Linux thread id of
/// the thread that made the call.
/// </summary>
/// <param name="Thread">The thread's name as the kernel has it (/proc/self/task/TID/comm: "lab-topo acc0"), or the topology's name for it once the thread is gone.</param>
/// <param name="Tid">The Linux thread id (what ps -L and /proc/self/task show).</param>
/// <param name="Role">The roles its calls make it: listener (listen), acceptor (accept4), reader (read), joined with " + ".</param>
/// <param name="Listen">listen(2) calls (Listen events).</param>
/// <param name="Accept">accept4 calls that returned a connection (Accepted events).</param>
/// <param name="Read">recv calls that returned data (Read events).</param>
/// <param name="Handoffs">Connections it passed to another thread (Handoff events).</param>
/// <param name="Requests">Requests it answered (RequestServed events).</param>
public sealed record ThreadCalls(string Thread, int Tid, string Role, long Listen, long Accept, long Read, long Handoffs, long Requests);

/// <summary>One of a server's threads as /proc shows it at one moment.</summary>
/// <param name="Thread">Its name (/proc/self/task/TID/comm).</param>
/// <param name="Tid">Its Linux thread id.</param>
/// <param name="State">From /proc/self/task/TID/stat: S asleep (interruptible), R running.</param>
/// <param name="WaitChannel">/proc/self/task/TID/wchan: the kernel function it sleeps in ("0" while running or between calls).</param>
/// <param name="Syscall">The system call number it is in (/proc/self/task/TID/syscall; x86-64: 288 accept4, 232 epoll_wait, 202 futex).</param>
/// <param name="InAccept">Asleep inside accept in the kernel.</param>
public sealed record ThreadWait(string Thread, int Tid, char State, string WaitChannel, string Syscall, bool InAccept);

/// <summary>Which thread made which call: the table of <see cref="ThreadCalls"/> for a topology, and a chart of it.</summary>
public static class Roles
{
    /// <summary>
    /// One row per thread that made a listen, accept, read or hand-off, in the order the threads first appear, from
    /// <paramref name="topology"/>'s events. Each thread is named by the kernel (/proc/self/task/TID/comm) while it
    /// exists, so a thread the topology did not start (the one that called <c>Start</c>, for most models) shows too.
    /// Throws when the event ring has overwritten events: the counts would be short.
    /// </summary>
    public static IReadOnlyList<ThreadCalls> Calls(ITopology topology)
    {
        ArgumentNullException.ThrowIfNull(topology);
        var events = topology.Events;
        var snapshot = events.Snapshot();
        foreach (var kind in Counted)
        {
            long held = snapshot.Count(e => e.Kind == kind), total = events.Count(kind);
            if (held != total)
                throw new InvalidOperationException($"The event ring of {topology.Name} kept {held} of {total} {kind} events (the newest win): " +
                                                    "send fewer requests, or make the topology with a larger TopologyOptions.EventCapacity.");
        }
        var names = new Dictionary<int, string>();
        foreach (var w in topology.Metrics.Workers) if (w.ThreadId != 0) names[w.ThreadId] = w.Name;
        if (topology is RoleSplit { ListenerThreadId: > 0 } rs) names.TryAdd(rs.ListenerThreadId, "listen");
        var rows = new List<ThreadCalls>();
        foreach (var g in snapshot.Where(e => Counted.Contains(e.Kind)).GroupBy(e => e.ThreadId))
        {
            long N(TopologyEventKind k) => g.LongCount(e => e.Kind == k);
            long listen = N(TopologyEventKind.Listen), accept = N(TopologyEventKind.Accepted), read = N(TopologyEventKind.Read);
            var role = string.Join(" + ", new[] { ("listener", listen), ("acceptor", accept), ("reader", read) }.Where(r => r.Item2 > 0).Select(r => r.Item1));
            rows.Add(new ThreadCalls(Comm(g.Key) ?? (names.TryGetValue(g.Key, out var n) ? n : $"tid {g.Key} (ended)"), g.Key, role.Length == 0 ? "(hands off only)" : role,
                listen, accept, read, N(TopologyEventKind.Handoff), N(TopologyEventKind.RequestServed)));
        }
        return rows;
    }

    static readonly TopologyEventKind[] Counted =
        [TopologyEventKind.Listen, TopologyEventKind.Accepted, TopologyEventKind.Read, TopologyEventKind.Handoff, TopologyEventKind.RequestServed];

    /// <summary>The thread's name from /proc/self/task/TID/comm (15 characters at most), or null once it is gone.</summary>
    static string? Comm(int tid)
    {
        try { return File.ReadAllText($"/proc/self/task/{tid}/comm").Trim(); }
        catch (IOException) { return null; }
    }

    /// <summary>
    /// What each of the topology's threads is doing now, as /proc says: its state letter, the kernel function it
    /// sleeps in (wchan) and its system call. Taken until every acceptor thread is seen asleep in accept
    /// (at most <paramref name="within"/>, default 2 s: an acceptor re-enters accept4 every 100 ms).
    /// </summary>
    public static IReadOnlyList<ThreadWait> Waits(Topology topology, TimeSpan? within = null)
    {
        ArgumentNullException.ThrowIfNull(topology);
        if (!topology.Running) throw new InvalidOperationException($"{topology.Name} is not running: Start it first (a stopped thread has no /proc entry).");
        var until = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(2));
        List<ThreadWait> rows;
        do
        {
            // Read the threads afresh each time: a worker that has not run yet has no thread id (seen in dotnet-repl:
            // the acceptors were missing from the table, and "every acceptor is in accept" held for none of them).
            var workers = topology.Metrics.Workers;
            var threads = workers.Where(w => w.ThreadId != 0).Select(w => (w.Name, w.Role, w.ThreadId)).ToList();
            if (topology is RoleSplit { ListenerThreadId: > 0 } rs && threads.All(t => t.ThreadId != rs.ListenerThreadId))
                threads.Insert(0, ("listen", WorkerRole.Loop, rs.ListenerThreadId));
            rows = threads.Select(t =>
            {
                var look = ThreadLook.Of(t.ThreadId);
                return new ThreadWait(Comm(t.ThreadId) ?? t.Name, t.ThreadId, look.State, look.WaitChannel, look.Syscall, look.InAccept);
            }).ToList();
            bool acceptorsParked = threads.Zip(rows).Where(p => p.First.Role == WorkerRole.Acceptor).All(p => p.Second.InAccept);
            if (acceptorsParked && workers.All(w => w.ThreadId != 0)) break;
            Thread.Sleep(5);
        } while (DateTime.UtcNow < until);
        return rows;
    }

    /// <summary>
    /// For each kind of call, each thread's share of it (percent of all calls of that kind): one group of bars per
    /// call, one bar per thread, so a listen made once shows as plainly as thousands of reads.
    /// </summary>
    public static Figure Chart(IReadOnlyList<ThreadCalls> rows, string title)
    {
        if (rows.Count == 0) throw new ArgumentException("No calls to chart: did the topology run and serve anything?", nameof(rows));
        var labels = rows.Select(r => $"{r.Thread} ({r.Tid})").ToList();
        static IReadOnlyList<double> Share(IReadOnlyList<ThreadCalls> rows, Func<ThreadCalls, long> f)
        {
            double total = rows.Sum(f);
            return rows.Select(r => total == 0 ? 0 : 100.0 * f(r) / total).ToList();
        }
        return LabCharts.GroupedBars(title, "% of all calls of that kind", labels,
            ("listen", Share(rows, r => r.Listen)), ("accept", Share(rows, r => r.Accept)), ("read", Share(rows, r => r.Read)));
    }

    /// <summary>
    /// Starts <paramref name="topology"/> if it is not running, runs <paramref name="load"/> against it, takes the
    /// table of calls while its threads still exist, then stops it (if it was started here).
    /// </summary>
    public static RoleRun Run(Topology topology, LoadOptions load)
    {
        ArgumentNullException.ThrowIfNull(topology);
        bool started = !topology.Running;
        if (started) topology.Start();
        try
        {
            var run = TopologyRunner.Run(topology, load);
            var calls = Calls(topology);
            var declared = topology.Metrics.Workers;
            return new RoleRun(topology.Name, run, calls, declared, topology is RoleSplit rs ? rs.ListenerThreadId : 0);
        }
        finally
        {
            if (started) topology.Dispose();
        }
    }
}

/// <summary>One load run against a server, with which thread made which call.</summary>
/// <param name="Topology">The server's name.</param>
/// <param name="Run">The run: the client's results and the server's per-thread counters.</param>
/// <param name="Threads">One row per thread that made a call.</param>
/// <param name="Declared">The server's threads as the topology made them (name, role, tid).</param>
/// <param name="ListenerThreadId">The thread that called listen, when the topology says (RoleSplit), else 0.</param>
public sealed record RoleRun(string Topology, TopologyRun Run, IReadOnlyList<ThreadCalls> Threads, IReadOnlyList<WorkerMetrics> Declared, int ListenerThreadId)
{
    /// <summary>Connections the load generator opened (connect calls).</summary>
    public long ClientConnections => Run.Load.ConnectionsOpened;
    /// <summary>Requests the load generator completed.</summary>
    public long ClientRequests => Run.Load.Completed;
    /// <summary>listen calls, over every thread.</summary>
    public long Listens => Threads.Sum(t => t.Listen);
    /// <summary>accept calls that returned a connection, over every thread.</summary>
    public long Accepts => Threads.Sum(t => t.Accept);
    /// <summary>reads that returned data, over every thread.</summary>
    public long Reads => Threads.Sum(t => t.Read);
    /// <summary>Requests answered, over every thread.</summary>
    public long Answered => Threads.Sum(t => t.Requests);
    /// <summary>Threads that made at least one call of each kind: (listen, accept, read).</summary>
    public (int Listen, int Accept, int Read) ThreadsMaking => (Threads.Count(t => t.Listen > 0), Threads.Count(t => t.Accept > 0), Threads.Count(t => t.Read > 0));

    /// <summary>Accepts made by threads the topology did not make as acceptors (role Acceptor or, for a listener that accepts, Dispatcher/Loop).</summary>
    public long AcceptsOffRole(params WorkerRole[] roles) => Threads.Where(t => !Has(t.Tid, roles)).Sum(t => t.Accept);
    /// <summary>Reads made by threads the topology did not make for <paramref name="roles"/>.</summary>
    public long ReadsOffRole(params WorkerRole[] roles) => Threads.Where(t => !Has(t.Tid, roles)).Sum(t => t.Read);

    bool Has(int tid, WorkerRole[] roles) => Declared.Any(w => w.ThreadId == tid && roles.Contains(w.Role));

    /// <summary>Each thread's share of each kind of call.</summary>
    public Figure Chart() => Roles.Chart(Threads, $"{Topology}: which thread made which call");

    /// <summary>A line per thread, then the client's totals.</summary>
    public override string ToString() =>
        string.Join("\n", Threads.Select(t => $"{t.Thread,-10} tid {t.Tid,-7} {t.Role,-30} listen {t.Listen,2}  accept {t.Accept,5}  read {t.Read,6}  answered {t.Requests,6}")) +
        $"\nclient: {ClientConnections} connections, {ClientRequests} requests completed, errors {Run.Load.Errors}";
}
