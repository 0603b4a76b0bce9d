package schema

// Head is the alembic revision Ferry's schema matches (MLflow 3.11).
const Head = "7d34483879f0"

// Base36 is MLflow 3.6's head, the oldest revision Ferry upgrades from.
const Base36 = "bf29a5ff90ea"

// chain is upstream's single-head revision chain, oldest first (spec
// backend-store.md §3.3). Only down_revision order matters.
var chain = []string{
	"451aebb31d03", "90e64c465722", "181f10493468", "df50e92ffc5e", "7ac759974ad8",
	"89d4b8295536", "2b4d017a5e9b", "cfd24bdc0731", "0a8213491aaa", "728d730b5ebd",
	"27a6a02d2cf1", "84291f40a231", "a8c4a736bde6", "39d1c3be5f05", "c48cb773bb87",
	"bd07f7e963c5", "0c779009ac13", "cc1f77228345", "97727af70f4d", "3500859a5d39",
	"7f2a7d5fae7d", "2d6e25af4d3e", "acf3f17fdcc7", "867495a8f9d4", "5b0e9adcef9c",
	"4465047574b1", "f5a4f2784254", "0584bdc529eb", "400f98739977", "6953534de441",
	"bda7b8c39065", "cbc13b556ace", "770bee3ae1dd", "a1b2c3d4e5f6", "de4033877273",
	"1a0cddfcaa16", "534353b11cbc", "71994744cf8e", "3da73c924c2f", Base36,
	// MLflow 3.11 additions.
	"1bd49d398cd23", "b7c8d9e0f1a2", "5d2d30f0abce", "c9d4e5f6a7b8", "2c33131f4dae",
	"d3e4f5a6b7c8", "d0e1f2a3b4c5", "c8d9e0f1a2b3", "1b5f0d9ad7c1", "e1f2a3b4c5d6",
	"76601a5f987d", "c3d6457b6d8a", "a5b4c3d2e1f0", "ae8bbe7743c9", Head,
}

// RevisionKind says where a revision sits relative to what Ferry knows.
type RevisionKind int

// Revision kinds.
const (
	// RevisionUnknown is not in the chain: a newer upstream (or not
	// MLflow at all).
	RevisionUnknown RevisionKind = iota
	// RevisionTooOld predates MLflow 3.6; upgrade it with upstream's
	// `mlflow db upgrade` first.
	RevisionTooOld
	// RevisionUpgradable is Base36 or a later revision before Head.
	RevisionUpgradable
	// RevisionHead is Head.
	RevisionHead
)

// Classify places rev relative to the chain.
func Classify(rev string) RevisionKind {
	base := -1
	for i, r := range chain {
		if r == Base36 {
			base = i
		}
		if r != rev {
			continue
		}
		switch {
		case r == Head:
			return RevisionHead
		case base >= 0:
			return RevisionUpgradable
		default:
			return RevisionTooOld
		}
	}
	return RevisionUnknown
}
