package campaign

// Direction is a deliberately vague research direction, as the public study
// seeded its researchers with (without distinct directions they collapsed
// onto the same few ideas).
type Direction struct {
	Name   string `json:"name"`
	Family string `json:"family"`
	Text   string `json:"text"`
}

// Directions are the built-in nine, one per family of ideas the study's
// researchers explored, written for aar's testbeds (a frozen strong
// representation, weak soft labels, the `aar w2s` toolkit).
var Directions = []Direction{
	{"elicit", "unsupervised elicitation",
		"The strong representation may already know the answer without any teacher. Find ways to draw it out — structure, clusters, consistency — and lean on the weak labels as little as you can."},
	{"reweight", "confidence weighting",
		"Not every weak label deserves the same trust. Work out which ones to lean on and which to discount, and weight the student's training accordingly."},
	{"combine", "ensemble",
		"Combine what the weak teacher says with what the strong representation already knows: neither alone is the best teacher, but together they may be."},
	{"noisy-channel", "loss function",
		"Treat the weak labels as a noisy channel over the true ones. Estimate how the channel corrupts labels and train the student on what the true label probably is."},
	{"distill", "distillation",
		"Think about how the student should learn from the teacher's outputs: what form of target, how sharp or soft, over how many rounds of relabelling."},
	{"simplicity", "other",
		"The student should find the simple pattern the teacher was reaching for, not memorise its mistakes. Look for ways to bias it towards simple solutions."},
	{"learnability", "data filtering",
		"Some examples are learned early and consistently, others only by memorising. Use how easily the student learns each example to decide what to train on."},
	{"evolve", "evolutionary",
		"Search the space of training recipes systematically: mutate, combine and select what works, and keep track of everything you have tried."},
	{"probe", "model internals",
		"Look inside the strong representation: which directions carry the task, where the weak labels disagree with its geometry, and what that says about the teacher's errors."},
}

// Undirected is the one prompt every researcher gets under --undirected.
const Undirected = "Improve PGR on this testbed: find a method whose strong student recovers more of the gap between the weak teacher and the ceiling."
