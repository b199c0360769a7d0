using System.Diagnostics;
using System.Net;
using Lab.Hosts;
using Lab.Observe;
using Lab.Packets;
using Lab.Sockets;

namespace Lab.Experiments;

/// <summary>
/// Spoofed SYNs aimed at a listener on 127.0.0.1, inside a lab host so its counters are its own. What the kernel did
/// with them, read back: the SYN queue, the counters that moved, and every segment captured on the host's lo.
/// </summary>
/// <param name="SynsSent">Spoofed SYNs written to the raw socket.</param>
/// <param name="SynsSeen">SYNs captured arriving at the listener's port on lo.</param>
/// <param name="SynAcksSeen">SYN-ACKs captured leaving the listener (the flood works only if these exist and go nowhere).</param>
/// <param name="PeakSynQueue">Most request sockets (SYN-RECV) the listener held at any sample.</param>
/// <param name="Counters">The host's counters that changed during the run.</param>
public sealed record LoopbackSpoof(int SynsSent, int SynsSeen, int SynAcksSeen, int PeakSynQueue, CounterDelta Counters)
{
    /// <summary>
    /// Sends <paramref name="synCount"/> SYNs (at most 1,000, within 1 s) from the host's unassigned addresses
    /// (<see cref="SynFlood.SpoofedSources"/>) to a listener on 127.0.0.1 inside <paramref name="host"/>, capturing on
    /// the host's lo and reading the SYN queue through sock_diag every 10 ms. Needs CAP_NET_RAW and CAP_NET_ADMIN.
    /// </summary>
    public static LoopbackSpoof Run(NetHost host, int synCount = 200, int backlog = 16)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (synCount is < 1 or > 1000) throw new ArgumentOutOfRangeException(nameof(synCount), synCount, "Send 1 to 1,000 SYNs.");
        Needs.Capabilities("spoofed SYNs written with a raw socket", Capability.NetRaw, Capability.NetAdmin);
        using var listener = host.Run(() => Listener.Open(new IPEndPoint(IPAddress.Loopback, 0), backlog, new ListenerOptions { NonBlocking = true }));
        var at = listener.LocalEndPoint;
        using var capture = host.Run(() => PacketCapture.Start(at.Port, "lo", maxPackets: 5 * synCount, maxDuration: TimeSpan.FromSeconds(10)));
        using var peer = RawTcpPeer.Open(host, at);
        var before = host.Run(() => NetCounters.Read());
        int peak = 0;
        using var stop = new CancellationTokenSource();
        var sampler = new Thread(() => host.Run(() =>
        {
            using var reader = ListenQueues.Reader(at);
            while (!stop.IsCancellationRequested)
            {
                peak = Math.Max(peak, reader.Read().SynQueue);
                stop.Token.WaitHandle.WaitOne(10);
            }
        })) { IsBackground = true, Name = "lab-spoof queue" };
        sampler.Start();
        int sent = peer.SendSynFlood(SynFlood.SpoofedSources(host), synCount, TimeSpan.FromSeconds(1));
        // Everything the kernel does with a SYN on lo happens in the sender's softirq; 300 ms covers a busy machine.
        var settle = Stopwatch.StartNew();
        while (settle.ElapsedMilliseconds < 300) Thread.Sleep(20);
        stop.Cancel();
        sampler.Join(TimeSpan.FromSeconds(5));
        var counters = before.Diff(host.Run(() => NetCounters.Read()));
        var segments = capture.Segments;
        int syns = segments.Count(s => s.Destination.Port == at.Port && s.Flags.HasFlag(TcpFlags.Syn) && !s.Flags.HasFlag(TcpFlags.Ack));
        int synAcks = segments.Count(s => s.Source.Port == at.Port && s.Flags.HasFlag(TcpFlags.Syn) && s.Flags.HasFlag(TcpFlags.Ack));
        return new LoopbackSpoof(sent, syns, synAcks, peak, counters);
    }
}
