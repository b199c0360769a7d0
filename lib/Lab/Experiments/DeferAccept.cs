using System.Diagnostics;
using System.Net;
using Lab.Charts;
using Lab.Hosts;
using Lab.Observe;
using Lab.Sockets;

namespace Lab.Experiments;

/// <summary>One reading of a TCP_DEFER_ACCEPT listener's queues.</summary>
public sealed record DeferSample(double Seconds, int SynQueue, int AcceptQueue);

/// <summary>
/// The SYN queue made visible without privileges: a listener with TCP_DEFER_ACCEPT keeps a completed handshake as a
/// request socket (SYN-RECV) until data arrives, so data-less clients sit in the SYN queue where sock_diag (what
/// `ss` reads, no capability needed) counts them. Everything here runs on loopback, on a thread whose effective
/// capability set is empty.
/// </summary>
/// <param name="Clients">Clients that connected and sent nothing at first.</param>
/// <param name="Senders">How many of them then sent a few bytes.</param>
/// <param name="DeferSeconds">The TCP_DEFER_ACCEPT value.</param>
/// <param name="CapEff">The effective capability mask of the thread that did all this (0: none).</param>
/// <param name="ClientStates">What each client's own socket said (TCP_INFO) before any data was sent.</param>
/// <param name="Samples">The listener's SYN queue (sock_diag) and accept queue (TCP_INFO) every 20 ms.</param>
/// <param name="BeforeData">The queues once every client had connected.</param>
/// <param name="AfterData">The queues after the senders sent.</param>
/// <param name="Accepted">Connections accept() returned at the end (only the senders').</param>
/// <param name="FirstBytes">What the first accepted connection's first read returned.</param>
public sealed record DeferAccept(int Clients, int Senders, int DeferSeconds, ulong CapEff, IReadOnlyList<TcpState> ClientStates,
    IReadOnlyList<DeferSample> Samples, DeferSample BeforeData, DeferSample AfterData, int Accepted, string FirstBytes)
{
    /// <summary>
    /// Opens a listener on 127.0.0.1 with TCP_DEFER_ACCEPT = <paramref name="deferSeconds"/>, connects
    /// <paramref name="clients"/> clients 100 ms apart that send nothing, then lets <paramref name="senders"/> of them send
    /// "hello", and accepts what is ready. Bounded: at most 50 clients and about 1 s plus 100 ms per client.
    /// </summary>
    public static DeferAccept Run(int clients = 6, int senders = 2, int deferSeconds = 10)
    {
        if (clients is < 1 or > 50) throw new ArgumentOutOfRangeException(nameof(clients), clients, "Use 1 to 50 clients.");
        if (senders < 0 || senders > clients) throw new ArgumentOutOfRangeException(nameof(senders), senders, $"Use 0 to {clients} senders (at most the clients).");
        // Shorter than the run, and the kernel would let the connections through on the SYN-ACK retransmit timer
        // (TCP_DEFER_ACCEPT is kept as a number of SYN-ACK retransmissions: secs_to_retrans in inet_connection_sock.c).
        if (deferSeconds is < 3 or > 600) throw new ArgumentOutOfRangeException(nameof(deferSeconds), deferSeconds, "Use 3 to 600 s: shorter, and the first SYN-ACK retransmission (1 s) could end the wait mid-run.");
        return Unprivileged.Run(() => RunHere(clients, senders, deferSeconds), TimeSpan.FromSeconds(30));
    }

    static DeferAccept RunHere(int clients, int senders, int deferSeconds)
    {
        var capEff = Capabilities.Effective();
        using var listener = Listener.Open(new IPEndPoint(IPAddress.Loopback, 0), 16,
            new ListenerOptions { NonBlocking = true, DeferAcceptSeconds = deferSeconds });
        var at = listener.LocalEndPoint;
        var samples = new List<DeferSample>();
        var clock = Stopwatch.StartNew();
        using var reader = ListenQueues.Reader(at);
        DeferSample Read()
        {
            var r = reader.Read();
            var s = new DeferSample(Math.Round(clock.Elapsed.TotalSeconds, 3), r.SynQueue, r.AcceptQueue);
            samples.Add(s);
            return s;
        }
        void Wait(int ms) { var until = clock.ElapsedMilliseconds + ms; while (clock.ElapsedMilliseconds < until) { Read(); Thread.Sleep(20); } }

        var conns = new List<Connection>();
        try
        {
            Wait(200);
            for (int i = 0; i < clients; i++)
            {
                conns.Add(Client.Connect(at, TimeSpan.FromSeconds(5)));
                Wait(100);
            }
            Wait(200);
            var states = conns.Select(c => c.State).ToList();
            var before = Read();
            for (int i = 0; i < senders; i++) conns[i].WriteAll("hello"u8, TimeSpan.FromSeconds(2));
            Wait(300);
            var after = Read();
            int accepted = 0;
            string first = "";
            while (listener.TryAccept() is AcceptResult.Accepted a)
            {
                using var c = a.Connection;
                if (accepted++ == 0)
                {
                    var buffer = new byte[64];
                    int n = c.ReadSome(buffer, TimeSpan.FromSeconds(1));
                    first = System.Text.Encoding.ASCII.GetString(buffer, 0, Math.Max(0, n));
                }
            }
            Wait(100);
            return new DeferAccept(clients, senders, deferSeconds, capEff, states, samples, before, after, accepted, first);
        }
        finally { foreach (var c in conns) c.Dispose(); }
    }

    /// <summary>Both queues over the run; the senders wrote at the step.</summary>
    public Figure Chart() => LabCharts.TimeSeries($"TCP_DEFER_ACCEPT = {DeferSeconds} s: {Clients} clients connect, then {Senders} send data",
        "connections",
        Series.From("SYN queue (SYN-RECV, sock_diag)", Samples, s => s.Seconds, s => s.SynQueue),
        Series.From("accept queue (TCP_INFO)", Samples, s => s.Seconds, s => s.AcceptQueue));
}
