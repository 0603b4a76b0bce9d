package tracking

import (
	"math/rand/v2"
	"strconv"
)

// Word lists for generated run names (<adjective>-<noun>-<number>, at
// most 20 characters), in the style of upstream's name_utils.
var (
	namePredicates = []string{
		"abundant", "adaptable", "agreeable", "amazing", "ambitious", "amusing", "angry", "auspicious",
		"awesome", "bald", "beautiful", "bemused", "bedecked", "big", "bittersweet", "blushing", "bold",
		"bouncy", "brawny", "bright", "burly", "bustling", "calm", "capable", "carefree", "capricious",
		"caring", "casual", "charming", "chill", "classy", "clean", "clumsy", "colorful", "crawling",
		"dapper", "debonair", "delicate", "righteous", "dazzling", "defiant", "delightful", "dashing",
		"efficient", "enchanting", "entertaining", "enthused", "exultant", "fearless", "flawless",
		"fortunate", "fun", "funny", "gaudy", "gentle", "gifted", "glamorous", "grandiose", "gregarious",
		"handsome", "hilarious", "honorable", "illustrious", "incongruous", "indecisive", "industrious",
		"intelligent", "inquisitive", "intrigued", "invincible", "judicious", "kindly", "languid",
		"learned", "legendary", "likeable", "loud", "luminous", "luxuriant", "lyrical", "magnificent",
		"marvelous", "masked", "melodic", "merciful", "mercurial", "monumental", "mysterious", "nebulous",
		"nervous", "nimble", "nosy", "omniscient", "orderly", "overjoyed", "peaceful", "painted",
		"persistent", "placid", "polite", "popular", "powerful", "puzzled", "rambunctious", "rare",
		"rebellious", "respected", "resilient", "rogue", "rumbling", "salty", "sassy", "secretive",
		"selective", "sedate", "serious", "shivering", "skillful", "sincere", "skittish", "silent",
		"smiling", "sneaky", "sophisticated", "spiffy", "stately", "suave", "stylish", "tasteful",
		"thoughtful", "thundering", "traveling", "treasured", "trusting", "unequaled", "upbeat",
		"unique", "unleashed", "useful", "upset", "valuable", "vaunted", "victorious", "welcoming",
		"whimsical", "wistful", "wise", "worried", "youthful", "zealous",
	}
	nameNouns = []string{
		"ant", "ape", "asp", "auk", "bass", "bat", "bear", "bee", "bird", "boar", "bug", "calf", "carp",
		"cat", "chimp", "cod", "colt", "conch", "cow", "crab", "crane", "croc", "crow", "cub", "deer",
		"doe", "dog", "dolphin", "donkey", "dove", "duck", "eel", "elk", "fawn", "finch", "fish", "flea",
		"fly", "foal", "fowl", "fox", "frog", "gnat", "gnu", "goat", "goose", "grouse", "grub", "gull",
		"hare", "hawk", "hen", "hog", "horse", "hound", "jay", "kit", "kite", "koi", "lamb", "lark",
		"loon", "lynx", "mare", "midge", "mink", "mole", "moose", "moth", "mouse", "mule", "newt", "owl",
		"ox", "panda", "penguin", "perch", "pig", "pug", "quail", "ram", "rat", "ray", "robin", "roo",
		"rook", "seal", "shad", "shark", "sheep", "shoat", "shrew", "shrike", "shrimp", "skink", "skunk",
		"sloth", "slug", "smelt", "snail", "snake", "snipe", "sow", "sponge", "squid", "squirrel",
		"stag", "steed", "stoat", "stork", "swan", "tern", "toad", "trout", "turtle", "vole", "wasp",
		"whale", "wolf", "worm", "wren", "yak", "zebra",
	}
)

// generateRunName returns a random <adjective>-<noun>-<number> name of at
// most 20 characters.
func generateRunName() string {
	for {
		n := namePredicates[rand.IntN(len(namePredicates))] + "-" + nameNouns[rand.IntN(len(nameNouns))] + "-" + strconv.Itoa(rand.IntN(1000))
		if len(n) <= 20 {
			return n
		}
	}
}
