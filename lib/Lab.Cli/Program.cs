// The `lab` command. Verbs are added by the engine, kernel and doctor work (issues 3, 4, 8).
Console.Error.WriteLine("lab: no verbs yet");
return 2;
