using Lab.Observe;

namespace Lab.Topologies;

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

/// <summary>Which thread made which call: the table of <see cref="ThreadCalls"/> for a topology.</summary>
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
            rows.Add(new ThreadCalls(ThreadLook.TryOf(g.Key)?.Name ?? (names.TryGetValue(g.Key, out var n) ? n : $"tid {g.Key} (ended)"), g.Key, role.Length == 0 ? "(hands off only)" : role,
                listen, accept, read, N(TopologyEventKind.Handoff), N(TopologyEventKind.RequestServed)));
        }
        return rows;
    }

    static readonly TopologyEventKind[] Counted =
        [TopologyEventKind.Listen, TopologyEventKind.Accepted, TopologyEventKind.Read, TopologyEventKind.Handoff, TopologyEventKind.RequestServed];
}
