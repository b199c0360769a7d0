using System.Collections.Concurrent;
using System.Diagnostics;
using Lab.Sockets;

namespace Lab.Tests.Sockets;

/// <summary>
/// A blocking Listener.Accept waits in one accept4 in the kernel, so threads that wait in it take connections in the
/// kernel's order, and what wakes them (a token, Dispose) leaves the listening socket as it was.
/// </summary>
public class BlockingAcceptTests(ITestOutputHelper output)
{
    static string Wchan(int tid) => File.ReadAllText($"/proc/self/task/{tid}/wchan").Trim();

    /// <summary>Waits until thread <paramref name="tid"/> sleeps inside accept4 (its wait channel names the kernel's accept).</summary>
    static void WaitInAccept(int tid)
    {
        var clock = Stopwatch.StartNew();
        while (!Wchan(tid).Contains("accept"))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"thread {tid} never entered accept4 (wchan {Wchan(tid)})");
            Thread.Sleep(1);
        }
    }

    [Fact]
    public void ThreadsBlockedInAcceptTakeConnectionsFirstComeFirstServed()
    {
        using var listener = Listener.Open("127.0.0.1:0", 16);
        const int threads = 3, rounds = 4;
        var tids = new int[threads];
        var taken = new BlockingCollection<int>();
        var acceptors = Enumerable.Range(0, threads).Select(i => new Thread(() =>
        {
            Volatile.Write(ref tids[i], Lab.Interop.unistd.gettid());
            for (int n = 0; n < rounds; n++)
            {
                using var r = listener.Accept(TimeSpan.FromSeconds(30));
                taken.Add(r is AcceptResult.Accepted ? i : -1);
            }
        }) { IsBackground = true }).ToList();
        // Enter the wait queue in the order 0, 1, 2.
        for (int i = 0; i < threads; i++)
        {
            acceptors[i].Start();
            while (Volatile.Read(ref tids[i]) == 0) Thread.Sleep(1);
            WaitInAccept(tids[i]);
        }
        var order = new List<int>();
        var clients = new List<Connection>();
        try
        {
            for (int c = 0; c < threads * rounds; c++)
            {
                clients.Add(Client.Connect(listener.LocalEndPoint, TimeSpan.FromSeconds(5)));
                Assert.True(taken.TryTake(out var who, TimeSpan.FromSeconds(10)), $"connection {c} was not accepted");
                order.Add(who);
                // The thread that took it goes back to the tail of the wait queue before the next connection comes.
                if (order.Count(x => x == who) < rounds) WaitInAccept(tids[who]);
            }
        }
        finally { foreach (var c in clients) c.Dispose(); }
        output.WriteLine(string.Concat(order));
        Assert.Equal("012012012012", string.Concat(order));
        foreach (var t in acceptors) Assert.True(t.Join(TimeSpan.FromSeconds(5)));
    }

    [Fact]
    public void CancellingAWaitLeavesTheListenerListening()
    {
        using var listener = Listener.Open("127.0.0.1:0", 16);
        using var cts = new CancellationTokenSource();
        int tid = 0;
        Exception? thrown = null;
        var waiter = new Thread(() =>
        {
            Volatile.Write(ref tid, Lab.Interop.unistd.gettid());
            try { listener.Accept(ct: cts.Token); } catch (Exception e) { thrown = e; }
        }) { IsBackground = true };
        waiter.Start();
        while (Volatile.Read(ref tid) == 0) Thread.Sleep(1);
        WaitInAccept(tid);
        var clock = Stopwatch.StartNew();
        cts.Cancel();
        Assert.True(waiter.Join(TimeSpan.FromSeconds(5)), "the cancelled accept did not return");
        output.WriteLine($"returned {clock.Elapsed.TotalMilliseconds:0.0} ms after the cancel");
        Assert.IsAssignableFrom<OperationCanceledException>(thrown);
        // The same listening socket still takes connections: nothing was closed or shut down.
        using var client = Client.Connect(listener.LocalEndPoint, TimeSpan.FromSeconds(5));
        using var next = listener.Accept(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        Assert.IsType<AcceptResult.Accepted>(next);
    }

    [Fact]
    public void DisposingTheListenerWakesItsWaiter()
    {
        var listener = Listener.Open("127.0.0.1:0", 16);
        int tid = 0;
        Exception? thrown = null;
        var waiter = new Thread(() =>
        {
            Volatile.Write(ref tid, Lab.Interop.unistd.gettid());
            try { listener.Accept(); } catch (Exception e) { thrown = e; }
        }) { IsBackground = true };
        waiter.Start();
        while (Volatile.Read(ref tid) == 0) Thread.Sleep(1);
        WaitInAccept(tid);
        listener.Dispose();
        Assert.True(waiter.Join(TimeSpan.FromSeconds(5)), "the disposed listener's accept did not return");
        Assert.IsType<ObjectDisposedException>(thrown);
    }
}
