using System.Diagnostics;
using System.Net;
using Lab.Interop;

namespace Lab.Sockets;

/// <summary>One client of <see cref="ConnectTimer.Run"/>.</summary>
/// <param name="Client">0, 1, 2… in the order the clients started.</param>
/// <param name="StartedAt">When its connect(2) was called, from the first client's.</param>
/// <param name="Connected">Whether the handshake completed within the timeout.</param>
/// <param name="Took">From connect(2) to the handshake's end (EPOLLOUT); the timeout when it did not end in time.</param>
/// <param name="Error">Why it did not connect: "timeout", or the errno's name (ECONNREFUSED…); null when it connected.</param>
public sealed record ConnectTime(int Client, TimeSpan StartedAt, bool Connected, TimeSpan Took, string? Error)
{
    /// <summary><see cref="Took"/> in milliseconds.</summary>
    public double Milliseconds => Took.TotalMilliseconds;
}

/// <summary>What <see cref="ConnectTimer.Run"/> measured; disposing it closes the clients that connected.</summary>
public sealed class TimedClients : IDisposable
{
    internal TimedClients(IReadOnlyList<ConnectTime> times, IReadOnlyList<Connection> connected)
    {
        Times = times; Connected = connected;
        LabResources.Track(this, "TimedClients");
    }

    /// <summary>Each client's connect, in the order they started.</summary>
    public IReadOnlyList<ConnectTime> Times { get; }

    /// <summary>The clients whose handshake completed, still open (blocking), in the order they started.</summary>
    public IReadOnlyList<Connection> Connected { get; }

    /// <summary>How many clients connected within their timeout.</summary>
    public int ConnectedCount => Times.Count(t => t.Connected);

    /// <summary>Closes every connected client. Safe to call twice.</summary>
    public void Dispose()
    {
        foreach (var c in Connected) c.Dispose();
        LabResources.Untrack(this);
    }

    public override string ToString() => $"TimedClients ({ConnectedCount}/{Times.Count} connected)";
}

/// <summary>Clients connecting on a schedule, each timed: what a legitimate client meets, e.g. during a SYN flood.</summary>
public static class ConnectTimer
{
    /// <summary>
    /// Starts <paramref name="count"/> non-blocking connects to <paramref name="endpoint"/>, <paramref name="every"/>
    /// apart, and waits in epoll for each handshake to end (EPOLLOUT), giving each <paramref name="timeout"/>. A client
    /// that runs out of time closes its socket, as a client with a connect timeout does (so it sends no more SYNs).
    /// Returns once every client has connected or given up; the connected ones stay open until the result is disposed.
    /// Bounded: at most 1,000 clients (0 returns at once), <paramref name="every"/> at most 10 s, <paramref name="timeout"/> at most 60 s.
    /// </summary>
    public static TimedClients Run(IPEndPoint endpoint, int count, TimeSpan every, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        if (count is < 0 or > 1000) throw new ArgumentOutOfRangeException(nameof(count), count, "Time 0 to 1,000 clients.");
        if (every < TimeSpan.Zero || every > TimeSpan.FromSeconds(10)) throw new ArgumentOutOfRangeException(nameof(every), every, "Start clients 0 to 10 s apart.");
        if (timeout <= TimeSpan.Zero || timeout > TimeSpan.FromSeconds(60)) throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "Give each connect more than 0 and at most 60 s.");
        var conns = new Connection?[count];
        var times = new ConnectTime?[count];
        var started = new TimeSpan[count];
        var events = new EpollEvent[Math.Clamp(count, 1, 64)];
        using var epoll = Epoll.Create();
        var clock = Stopwatch.StartNew();
        int next = 0, done = 0;
        try
        {
            while (done < count)
            {
                var now = clock.Elapsed;
                if (next < count && now >= every * next)
                {
                    started[next] = now;
                    conns[next] = Client.BeginConnect(endpoint);                         // connect(2): EINPROGRESS
                    epoll.Add(conns[next]!.Handle, EpollEvents.Out, (ulong)next);
                    next++;
                    continue;
                }
                var wakeAt = next < count ? every * next : TimeSpan.MaxValue;
                for (int i = 0; i < next; i++)
                {
                    if (times[i] != null) continue;
                    if (now - started[i] >= timeout) { Finish(i, false, timeout, "timeout"); continue; }
                    if (started[i] + timeout < wakeAt) wakeAt = started[i] + timeout;
                }
                if (done == count) break;
                int waitMs = (int)Math.Clamp(Math.Ceiling((wakeAt - clock.Elapsed).TotalMilliseconds), 0, 1000);
                int n = epoll.Wait(events, waitMs);
                var at = clock.Elapsed;
                for (int k = 0; k < n; k++)
                {
                    int i = (int)events[k].Data;
                    if (times[i] != null) continue;
                    // EPOLLOUT (or EPOLLERR) on a connecting socket: the handshake ended; SO_ERROR says how.
                    int err = Sys.GetInt(conns[i]!.Handle, sys_socket.SOL_SOCKET, sys_socket.SO_ERROR, $"SO_ERROR of a connect to {Endpoints.Format(endpoint)}");
                    Finish(i, err == 0, at - started[i], err == 0 ? null : ErrnoNames.Name(err));
                }
            }
        }
        catch
        {
            foreach (var c in conns) c?.Dispose();
            throw;
        }
        return new TimedClients(times.Select(t => t!).ToList(), conns.Where(c => c != null).Select(c => c!).ToList());

        void Finish(int i, bool connected, TimeSpan took, string? error)
        {
            times[i] = new ConnectTime(i, started[i], connected, took, error);
            done++;
            if (connected) { epoll.Delete(conns[i]!.Handle); conns[i]!.NonBlocking = false; }
            else { conns[i]!.Dispose(); conns[i] = null; }
        }
    }
}
