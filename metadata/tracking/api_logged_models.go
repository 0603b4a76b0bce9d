package tracking

import (
	"database/sql"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ferryml/ferry/metadata/search"
	"github.com/ferryml/ferry/wire"
)

// The MLflow 3 logged-model routes (spec tracking-api.md §2.3).

// LoggedModelInfo is LoggedModel.info.
type LoggedModelInfo struct {
	ModelID                string     `json:"model_id"`
	ExperimentID           string     `json:"experiment_id"`
	Name                   string     `json:"name"`
	ArtifactURI            string     `json:"artifact_uri"`
	CreationTimestampMs    int64      `json:"creation_timestamp_ms"`
	LastUpdatedTimestampMs int64      `json:"last_updated_timestamp_ms"`
	ModelType              string     `json:"model_type,omitempty"`
	SourceRunID            string     `json:"source_run_id,omitempty"`
	Status                 string     `json:"status"`
	StatusMessage          string     `json:"status_message,omitempty"`
	Tags                   []KeyValue `json:"tags,omitempty"`
}

// LoggedModelMetric is a Metric of a logged model.
type LoggedModelMetric struct {
	Key           string    `json:"key"`
	Value         jsonFloat `json:"value"`
	Timestamp     int64     `json:"timestamp"`
	Step          int64     `json:"step"`
	DatasetName   string    `json:"dataset_name,omitempty"`
	DatasetDigest string    `json:"dataset_digest,omitempty"`
	ModelID       string    `json:"model_id,omitempty"`
	RunID         string    `json:"run_id,omitempty"`
}

// LoggedModelData is LoggedModel.data.
type LoggedModelData struct {
	Params  []KeyValue          `json:"params,omitempty"`
	Metrics []LoggedModelMetric `json:"metrics,omitempty"`
}

// LoggedModel is MLflow's LoggedModel message.
type LoggedModel struct {
	Info LoggedModelInfo `json:"info"`
	Data LoggedModelData `json:"data"`
}

var loggedModelStatusNames = map[int64]string{0: "LOGGED_MODEL_STATUS_UNSPECIFIED", 1: "LOGGED_MODEL_PENDING", 2: "LOGGED_MODEL_READY", 3: "LOGGED_MODEL_UPLOAD_FAILED"}

func loggedModelNotFound(id string) *wire.Error {
	return wire.Errorf(wire.ResourceDoesNotExist, "Logged model with ID '%s' not found.", id)
}

const loggedModelColumns = "logged_models.model_id, logged_models.experiment_id, logged_models.name, logged_models.artifact_location, logged_models.creation_timestamp_ms, logged_models.last_updated_timestamp_ms, logged_models.status, logged_models.lifecycle_stage, logged_models.model_type, logged_models.source_run_id, logged_models.status_message"

func scanLoggedModel(s rowScanner) (*LoggedModel, string, error) {
	var (
		m                       LoggedModel
		exp, status             int64
		stage, mtype, src, smsg sql.NullString
	)
	if err := s.Scan(&m.Info.ModelID, &exp, &m.Info.Name, &m.Info.ArtifactURI, &m.Info.CreationTimestampMs, &m.Info.LastUpdatedTimestampMs,
		&status, &stage, &mtype, &src, &smsg); err != nil {
		return nil, "", err
	}
	m.Info.ExperimentID = strconv.FormatInt(exp, 10)
	m.Info.Status = loggedModelStatusNames[status]
	m.Info.ModelType, m.Info.SourceRunID, m.Info.StatusMessage = mtype.String, src.String, smsg.String
	return &m, stage.String, nil
}

// validateLoggedModelName refuses the characters upstream refuses.
func validateLoggedModelName(name string) *wire.Error {
	if strings.ContainsAny(name, `/:.%"'`) {
		return wire.Errorf(wire.InvalidParameterValue,
			"Invalid model name ('%s') provided. Model name cannot contain the following characters: '/', ':', '.', '%%', '\"', \"'\"", name)
	}
	return nil
}

func newModelID() (string, error) {
	h, err := newRunID()
	return "m-" + h, err
}

// readModelKVs reads [{key, value}] with key rules and a 255-char key.
func readModelKVs(p *params, name string) ([]KeyValue, *wire.Error) {
	kvs, werr := p.keyValues(name)
	if werr != nil {
		return nil, werr
	}
	for i, kv := range kvs {
		if err := checkLen(fieldf("%s[%d].key", name, i), kv.Key, 255); err != nil {
			return nil, err
		}
	}
	return kvs, nil
}

// createLoggedModel is POST logged-models.
func (a *API) createLoggedModel(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	expID, werr := p.experimentID("experiment_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	name, werr := p.str("name")
	if werr != nil {
		return wire.Send(c, werr)
	}
	modelType, werr := p.str("model_type")
	if werr != nil {
		return wire.Send(c, werr)
	}
	srcRun, werr := p.str("source_run_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	ps, werr := readModelKVs(p, "params")
	if werr != nil {
		return wire.Send(c, werr)
	}
	tags, werr := readModelKVs(p, "tags")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if name == "" {
		name = generateRunName()
	}
	if werr := validateLoggedModelName(name); werr != nil {
		return wire.Send(c, werr)
	}
	for _, ck := range []struct {
		f, v string
		n    int
	}{{"name", name, 500}, {"model_type", modelType, 500}, {"source_run_id", srcRun, 32}} {
		if werr := checkLen(ck.f, ck.v, ck.n); werr != nil {
			return wire.Send(c, werr)
		}
	}
	id, err := newModelID()
	if err != nil {
		return a.send(c, nil, err)
	}
	ctx := c.UserContext()
	m, err := a.insertLoggedModel(ctx, expID, id, name, modelType, srcRun, ps, tags)
	return a.send(c, fiber.Map{"model": m}, err)
}

// getLoggedModel is GET logged-models/{model_id}.
func (a *API) getLoggedModel(c *fiber.Ctx) error {
	id := c.Params("model_id")
	if werr := wire.CheckText("model_id", id); werr != nil {
		return wire.Send(c, werr)
	}
	allow := strings.EqualFold(c.Query("allow_deleted"), "true")
	ctx := c.UserContext()
	m, err := a.loggedModel(ctx, id, allow)
	return a.send(c, fiber.Map{"model": m}, err)
}

// finalizeLoggedModel is PATCH logged-models/{model_id}.
func (a *API) finalizeLoggedModel(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.reqStr("model_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	r := p.raw("status")
	if r == nil {
		return wire.Send(c, wire.MissingParam("status"))
	}
	var status int64 = -1
	if s, werr := p.str("status"); werr == nil {
		if n, ok := search.LoggedModelStatuses[s]; ok {
			status = n
		} else if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			status = n
		}
	} else if n, _, werr := p.int64Field("status"); werr == nil {
		status = n
	}
	if _, ok := loggedModelStatusNames[status]; !ok {
		return wire.Send(c, typeError("status", r))
	}
	ctx := c.UserContext()
	m, err := a.setLoggedModelStatus(ctx, id, status)
	return a.send(c, fiber.Map{"model": m}, err)
}

// deleteLoggedModel is DELETE logged-models/{model_id} (soft).
func (a *API) deleteLoggedModel(c *fiber.Ctx) error {
	id := c.Params("model_id")
	ctx := c.UserContext()
	err := a.markLoggedModelDeleted(ctx, id)
	return a.send(c, fiber.Map{}, err)
}

// setLoggedModelTags is PATCH logged-models/{model_id}/tags.
func (a *API) setLoggedModelTags(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	tags, werr := readModelKVs(p, "tags")
	if werr != nil {
		return wire.Send(c, werr)
	}
	id := c.Params("model_id")
	ctx := c.UserContext()
	err := a.setLoggedModelTagRows(ctx, id, tags)
	return a.send(c, fiber.Map{}, err)
}

// deleteLoggedModelTag is DELETE logged-models/{model_id}/tags/{tag_key}.
func (a *API) deleteLoggedModelTag(c *fiber.Ctx) error {
	id, key := c.Params("model_id"), c.Params("tag_key")
	ctx := c.UserContext()
	err := a.deleteLoggedModelTagRow(ctx, id, key)
	return a.send(c, fiber.Map{}, err)
}

// logLoggedModelParams is POST logged-models/{model_id}/params.
func (a *API) logLoggedModelParams(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	id, werr := p.reqStr("model_id")
	if werr != nil {
		return wire.Send(c, werr)
	}
	ps, werr := readModelKVs(p, "params")
	if werr != nil {
		return wire.Send(c, werr)
	}
	ctx := c.UserContext()
	err := a.setLoggedModelParamRows(ctx, id, ps)
	return a.send(c, fiber.Map{}, err)
}

// searchLoggedModels is POST logged-models/search.
func (a *API) searchLoggedModels(c *fiber.Ctx) error {
	p, werr := readParams(c)
	if werr != nil {
		return wire.Send(c, werr)
	}
	expStrs, werr := p.strs("experiment_ids")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if len(expStrs) == 0 {
		return wire.Send(c, wire.MissingParam("experiment_ids"))
	}
	expIDs := make([]int64, 0, len(expStrs))
	for _, s := range expStrs {
		id, werr := parseExperimentID("experiment_ids", s)
		if werr != nil {
			return wire.Send(c, werr)
		}
		expIDs = append(expIDs, id)
	}
	filter, werr := p.str("filter")
	if werr != nil {
		return wire.Send(c, werr)
	}
	maxResults, given, werr := p.int64Field("max_results")
	if werr != nil {
		return wire.Send(c, werr)
	}
	if !given {
		maxResults = 50
	}
	if maxResults < 1 || maxResults > searchMaxResults {
		return wire.Send(c, wire.Errorf(wire.InvalidParameterValue,
			"Invalid value %d for parameter 'max_results' supplied. It must be between 1 and %d", maxResults, searchMaxResults))
	}
	datasets, werr := loggedModelDatasets(p)
	if werr != nil {
		return wire.Send(c, werr)
	}
	token, werr := p.str("page_token")
	if werr != nil {
		return wire.Send(c, werr)
	}
	offset, werr := wire.ParsePageToken(token)
	if werr != nil {
		return wire.Send(c, werr)
	}
	obs, werr := p.objects("order_by")
	if werr != nil {
		return wire.Send(c, werr)
	}
	var order []search.LoggedModelOrder
	for _, o := range obs {
		field, werr := o.reqStr("field_name")
		if werr != nil {
			return wire.Send(c, werr)
		}
		asc := true
		if r := o.raw("ascending"); r != nil {
			asc = string(r) != "false"
		}
		ob, err := search.ParseLoggedModelOrder(field, asc)
		if err != nil {
			return wire.Send(c, searchError(err))
		}
		// Upstream passes `ob.dataset_name or None` and `ob.dataset_digest
		// or None` and checks neither (a digest without a name is allowed).
		if ob.DatasetName, werr = o.str("dataset_name"); werr != nil {
			return wire.Send(c, werr)
		}
		if ob.DatasetDigest, werr = o.str("dataset_digest"); werr != nil {
			return wire.Send(c, werr)
		}
		order = append(order, ob)
	}
	comps, err := search.ParseLoggedModelsFilter(filter)
	if err != nil {
		return wire.Send(c, searchError(err))
	}
	q := search.LoggedModelsQuery{Columns: loggedModelColumns, ExperimentIDs: expIDs, Filter: comps, Datasets: datasets,
		OrderBy: order, Limit: maxResults + 1, Offset: offset}
	ctx := c.UserContext()
	resp := fiber.Map{}
	models, next, err := a.searchLoggedModelRows(ctx, q, maxResults, offset)
	if next != "" {
		resp["next_page_token"] = next
	}
	if len(models) > 0 {
		resp["models"] = models
	}
	return a.send(c, resp, err)
}

// loggedModelDatasets reads logged-models/search `datasets`
// ([{dataset_name, dataset_digest}]). As upstream's store, an entry
// without a (non-empty) dataset_name is refused before the page token is
// read; an empty digest counts as absent.
func loggedModelDatasets(p *params) ([]search.LoggedModelDataset, *wire.Error) {
	objs, werr := p.objects("datasets")
	if werr != nil {
		return nil, werr
	}
	out := make([]search.LoggedModelDataset, 0, len(objs))
	for _, o := range objs {
		name, werr := o.str("dataset_name")
		if werr != nil {
			return nil, werr
		}
		digest, werr := o.str("dataset_digest")
		if werr != nil {
			return nil, werr
		}
		out = append(out, search.LoggedModelDataset{Name: name, Digest: digest})
	}
	for _, d := range out {
		if d.Name == "" {
			return nil, wire.Errorf(wire.InvalidParameterValue, "`dataset_name` in the `datasets` clause must be specified.")
		}
	}
	return out, nil
}
