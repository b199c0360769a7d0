using System.Diagnostics;
using System.Text.RegularExpressions;
using Lab.Cli.Highlight;

namespace Lab.Tests.Engine;

/// <summary>One classifier (Roslyn's) colours the book's code and the REPL's input, with the same kinds.</summary>
[Collection(nameof(EngineCollection))]
public class HighlightTests
{
    const string Code = "var l = Listener.Open(\"127.0.0.1:0\", backlog: 3); // a listener\nif (l.Backlog > 0) Check.That(true, \"ok\")";

    [Fact]
    public void RoslynsClassifierTellsKeywordsTypesMethodsStringsNumbersAndComments()
    {
        using var h = new CSharpHighlighter();
        var tokens = h.Classify(Code, new[] { "Lab", "Lab.Sockets" }, TestContext.Current.CancellationToken);
        string Of(TokenKind k) => string.Join("|", tokens.Where(t => t.Kind == k).Select(t => Code.Substring(t.Start, t.Length)));
        Assert.Equal("var|true", Of(TokenKind.Keyword));
        Assert.Equal("if", Of(TokenKind.Control));
        Assert.Equal("Listener|Check", Of(TokenKind.Type));
        Assert.Equal("Open|That", Of(TokenKind.Method));
        Assert.Equal("\"127.0.0.1:0\"|\"ok\"", Of(TokenKind.String));
        Assert.Equal("3|0", Of(TokenKind.Number));
        Assert.Equal("// a listener", Of(TokenKind.Comment));
        Assert.Equal(Code.Length, tokens.Sum(t => t.Length)); // every character once, in order
        // Without the using, Listener is just a name: the colours come from what the code binds to.
        Assert.DoesNotContain(h.Classify(Code, ct: TestContext.Current.CancellationToken), t => Code.Substring(t.Start, t.Length) == "Listener" && t.Kind == TokenKind.Type);
    }

    [Fact]
    public void TheBookAndTheReplRenderTheSameTokens()
    {
        using var h = new CSharpHighlighter();
        var tokens = h.Classify(Code, new[] { "Lab", "Lab.Sockets" }, TestContext.Current.CancellationToken);
        var html = CSharpHighlighter.Html(Code, tokens);
        var ansi = CSharpHighlighter.Ansi(Code, tokens);
        foreach (var t in tokens.Where(t => t.Kind != TokenKind.Plain && CSharpHighlighter.AnsiColour(t.Kind) != null))
        {
            var text = Code.Substring(t.Start, t.Length);
            Assert.Contains($"<span class=\"{CSharpHighlighter.CssClass(t.Kind)}\">{System.Net.WebUtility.HtmlEncode(text)}</span>", html);
            Assert.Contains($"{CSharpHighlighter.AnsiColour(t.Kind)}{text}\x1b[0m", ansi);
        }
        Assert.Equal(Code, Regex.Replace(ansi, @"\x1b\[[0-9;]*m", ""));
        // A line of a longer submission colours as part of it: the string opened on the line before continues.
        var before = "var s = @\"one\n";
        var line = "two\";";
        var rest = CSharpHighlighter.Ansi(before + line, h.Classify(before + line, ct: TestContext.Current.CancellationToken), before.Length);
        Assert.StartsWith(CSharpHighlighter.AnsiColour(TokenKind.String) + "two\"", rest);
    }

    /// <summary>`lab repl` in a real terminal (tmux): what is typed is redrawn in colour.</summary>
    [Fact]
    public async Task TheReplColoursWhatIsTyped()
    {
        if (!File.Exists("/usr/bin/tmux")) Assert.Skip("tmux is not installed (scripts/prereqs installs it)");
        var dir = Directory.CreateTempSubdirectory("lab-repl-colour-").FullName;
        var session = "lab-repl-colour-" + Guid.NewGuid().ToString("N")[..8];
        async Task<string> Tmux(params string[] args)
        {
            var psi = new ProcessStartInfo("tmux") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in args) psi.ArgumentList.Add(a);
            using var p = Process.Start(psi)!;
            var o = await p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
            await p.WaitForExitAsync(TestContext.Current.CancellationToken).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
            return o;
        }
        try
        {
            await Tmux("new-session", "-d", "-s", session, "-x", "150", "-y", "20", "-c", dir,
                // A tmux server started by a process with NO_COLOR set (xunit's -noColor sets it) hands it to every
                // session's command: unset it, as a reader's terminal would not have it.
                "env", "-u", "NO_COLOR", "TERM=xterm-256color", "HOME=" + dir, "dotnet", LabProcess.Dll, "repl");
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
            while (!(await Tmux("capture-pane", "-p", "-t", session)).Contains("lab repl: C#"))
            {
                Assert.True(DateTime.UtcNow < deadline, "lab repl did not start: " + await Tmux("capture-pane", "-p", "-t", session));
                await Task.Delay(200, TestContext.Current.CancellationToken);
            }
            // Listener is in Lab.Sockets, which the REPL does not import by itself: a submitted using brings it, for the
            // classifier too. (The trailing space: tmux takes an argument ending in ';' for its command separator.)
            await Tmux("send-keys", "-t", session, "-l", "using Lab.Sockets; ");
            await Tmux("send-keys", "-t", session, "Enter");
            await Tmux("send-keys", "-t", session, "-l", "var n = Listener.Open(\"127.0.0.1:0\"); // x");
            // The classifier warms up in the background (Roslyn's first classification takes seconds); until then the
            // line is plain. A key pressed after that redraws it in colour.
            string screen;
            while (true)
            {
                screen = await Tmux("capture-pane", "-p", "-e", "-t", session);
                if (Regex.IsMatch(screen, @"\x1b\[[0-9;]*36mListener")) break;
                Assert.True(DateTime.UtcNow < deadline, "the line was never coloured:\n" + screen.Replace("\x1b", "\\e"));
                await Tmux("send-keys", "-t", session, "-l", " ");
                await Tmux("send-keys", "-t", session, "BSpace");
                await Task.Delay(500, TestContext.Current.CancellationToken);
            }
            Assert.Matches(@"\x1b\[[0-9;]*34mvar", screen);                  // keyword: blue
            Assert.Matches(@"\x1b\[[0-9;]*33mOpen", screen);                 // method: yellow
            Assert.Matches(@"\x1b\[[0-9;]*31m""127\.0\.0\.1:0""", screen);   // string: red
            Assert.Matches(@"\x1b\[[0-9;]*90m// x", screen);                 // comment: grey
            Assert.Contains("> var n = Listener.Open(\"127.0.0.1:0\"); // x", await Tmux("capture-pane", "-p", "-t", session));
            await Tmux("send-keys", "-t", session, "C-u");
            await Tmux("send-keys", "-t", session, "C-d");
            while ((await Tmux("list-sessions", "-F", "#{session_name}")).Contains(session))
            {
                Assert.True(DateTime.UtcNow < deadline, "lab repl did not exit on Ctrl+D");
                await Task.Delay(200, TestContext.Current.CancellationToken);
            }
        }
        finally
        {
            // Our own session only, by its unique name, in case an assert left it running.
            try { await Tmux("kill-session", "-t", session); } catch (Exception) { }
            Directory.Delete(dir, true);
        }
    }
}
