using System.Diagnostics;
using Lab.Interop;
using Lab.Sockets;
using Tmds.Linux;

namespace Lab.Experiments;

/// <summary>One reading of both ends of a connection while data flows from writer (client) to reader (server): what chapter 05's
/// fill experiment samples.</summary>
/// <param name="RecvQ">The reader's unread bytes (SIOCINQ, ss's Recv-Q).</param>
/// <param name="ReaderWindow">The window the reader advertises (tcpi_rcv_wnd, bytes).</param>
/// <param name="SendQ">The writer's unacknowledged bytes, sent or not (SIOCOUTQ, ss's Send-Q).</param>
/// <param name="WriterSeesWindow">The reader's window as the writer last heard it (tcpi_snd_wnd, bytes).</param>
/// <param name="NotSent">The writer's bytes not yet sent at all (tcpi_notsent_bytes).</param>
/// <param name="Written">Bytes the writing application has handed to write() so far.</param>
/// <param name="Read">Bytes the reading application has read so far.</param>
public readonly record struct FlowReading(long RecvQ, long ReaderWindow, long SendQ, long WriterSeesWindow, long NotSent, long Written, long Read);

/// <summary>A blocked write, timed: chapter 05.</summary>
public static class ReadingAndSending
{
    /// <summary>
    /// A blocking write() into a full send queue: the writer fills both queues (non-blocking, until EAGAIN), switches
    /// the socket to blocking and writes <paramref name="bytes"/> more, while the reader sleeps for
    /// <paramref name="readerSleeps"/> and then reads everything. SO_SNDTIMEO (the sleep + 5 s) bounds the wait.
    /// </summary>
    public static BlockedWriteResult BlockedWrite(TimeSpan readerSleeps, int bytes = 1024, int receiveBuffer = 16 * 1024, int sendBuffer = 16 * 1024)
    {
        if (readerSleeps < TimeSpan.Zero || readerSleeps > TimeSpan.FromSeconds(10)) throw new ArgumentOutOfRangeException(nameof(readerSleeps), readerSleeps, "0-10 s.");
        using var pair = ConnectedPair.Open(serverReceiveBuffer: receiveBuffer, clientSendBuffer: sendBuffer);
        var w = pair.Client;
        w.NonBlocking = true;
        var chunk = new byte[1024];
        long filled = 0;
        var fill = Stopwatch.StartNew();
        while (fill.Elapsed < TimeSpan.FromSeconds(5))
        {
            var r = w.Write(chunk);
            if (r.IsData) { filled += r.Bytes; continue; }
            // EAGAIN. The queues take a moment to settle (the reader compacts its queue and re-advertises room, late
            // ACKs free sent data): wait up to 300 ms for room. POLLOUT needs a third of the send buffer free, but a
            // write needs only some room (sk_stream_memory_free), and on a busy machine late ACKs freed a little: the
            // "blocking" write then returned at once. So full means a write still returns EAGAIN after the wait.
            Sys.Poll(w.Handle, LibC.POLLOUT, 300, "writer");
            r = w.Write(chunk);
            if (r.IsData) { filled += r.Bytes; continue; }
            break;
        }
        int recvQ = pair.Server.InQueue, sendQ = w.OutQueue;
        w.NonBlocking = false;
        Sys.SetTimeval(w.Handle, sys_socket.SO_SNDTIMEO, readerSleeps + TimeSpan.FromSeconds(5), "SO_SNDTIMEO");
        long drained = 0;
        var reader = Task.Factory.StartNew(() =>
        {
            Thread.Sleep(readerSleeps);
            var buf = new byte[64 * 1024];
            var until = Stopwatch.StartNew();
            while (drained < filled + bytes && until.Elapsed < TimeSpan.FromSeconds(10))
            {
                if ((Sys.Poll(pair.Server.Handle, LibC.POLLIN, 50, "reader") & LibC.POLLIN) == 0) continue;
                var r = pair.Server.Read(buf);
                if (!r.IsData) break;
                drained += r.Bytes;
            }
        }, TaskCreationOptions.LongRunning);
        var sw = Stopwatch.StartNew();
        var result = w.Write(new byte[bytes]);
        var blocked = sw.Elapsed;
        reader.Wait(TimeSpan.FromSeconds(12));
        return new BlockedWriteResult(filled, recvQ, sendQ, readerSleeps.TotalMilliseconds, Math.Round(blocked.TotalMilliseconds, 1), result.ToString());
    }
}

/// <summary>What <see cref="ReadingAndSending.BlockedWrite"/> measured.</summary>
/// <param name="FilledBytes">Bytes write() accepted before EAGAIN: what the two queues hold together.</param>
/// <param name="RecvQ">The reader's Recv-Q once full.</param>
/// <param name="SendQ">The writer's Send-Q once full.</param>
/// <param name="ReaderSleptMs">How long the reader did not read.</param>
/// <param name="WriteBlockedMs">How long the blocking write() took to return.</param>
/// <param name="WriteResult">What it returned.</param>
public sealed record BlockedWriteResult(long FilledBytes, int RecvQ, int SendQ, double ReaderSleptMs, double WriteBlockedMs, string WriteResult);
