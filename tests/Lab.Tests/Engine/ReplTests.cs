namespace Lab.Tests.Engine;

[Collection(nameof(EngineCollection))]
public class ReplTests
{
    [Fact]
    public async Task ConsoleReadLineInACellReadsTheNextInputLine()
    {
        var dir = Directory.CreateTempSubdirectory("lab-repl-").FullName;
        try
        {
            var r = await LabProcess.Run(dir, "Console.ReadLine() + \"!\"\nhello\n#exit\n", "repl");
            Assert.True(r.ExitCode == 0, r.ToString());
            Assert.Contains("hello!", r.Stdout);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public async Task ReplEvaluatesAMultiLineSnippetFromStandardInput()
    {
        var dir = Directory.CreateTempSubdirectory("lab-repl-").FullName;
        try
        {
            var input = """
                record Queue(string Name, int Depth);
                var queues = new[] {
                    new Queue("syn", 2),
                    new Queue("accept", 10),
                };
                queues
                typeof(LabResources).Assembly.GetName().Name
                undefinedThing
                "still here"
                #exit
                """;
            var r = await LabProcess.Run(dir, input + "\n", "repl");
            Assert.True(r.ExitCode == 0, r.ToString());
            var expectedTable = "Name    Depth\n------  -----\nsyn         2\naccept     10\n";
            Assert.Contains(expectedTable, r.Stdout.Replace("\r\n", "\n"));
            Assert.Contains("Lab\n", r.Stdout);
            Assert.Contains("repl, cell 5, line 1, col 1: CS0103 The name 'undefinedThing' does not exist", r.Stderr);
            Assert.Contains("still here", r.Stdout);
        }
        finally { Directory.Delete(dir, true); }
    }
}
