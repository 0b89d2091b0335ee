-- The serving store's schema as release 0.1.0 (e04b5db) created it: CreateTable/CreateIndex of
-- serving/store.py's metadata and serving/keys.py's api_keys, compiled for sqlite. Frozen.

CREATE TABLE serving_contacts (
	snapshot_id VARCHAR(64) NOT NULL,
	kind VARCHAR(16) NOT NULL,
	value VARCHAR(256) NOT NULL,
	customer_id VARCHAR(128) NOT NULL,
	PRIMARY KEY (snapshot_id, kind, value, customer_id)
);

CREATE INDEX serving_contacts_lookup ON serving_contacts (kind, value);

CREATE TABLE serving_customers (
	snapshot_id VARCHAR(64) NOT NULL,
	customer_id VARCHAR(128) NOT NULL,
	scores TEXT,
	segments TEXT,
	history TEXT,
	brief TEXT,
	profile TEXT,
	consent BOOLEAN NOT NULL,
	PRIMARY KEY (snapshot_id, customer_id)
);

CREATE TABLE serving_feedback (
	event_id VARCHAR(128) NOT NULL,
	event VARCHAR(16) NOT NULL,
	offer_id VARCHAR(128) NOT NULL,
	customer_id VARCHAR(128),
	occurred_at DATETIME NOT NULL,
	context TEXT,
	received_at DATETIME NOT NULL,
	key_id VARCHAR(64) NOT NULL,
	decision_id VARCHAR(128),
	propensity FLOAT,
	PRIMARY KEY (event_id)
);

CREATE INDEX serving_feedback_shown ON serving_feedback (customer_id, event, occurred_at);

CREATE TABLE serving_linkage_models (
	snapshot_id VARCHAR(64) NOT NULL,
	settings TEXT NOT NULL,
	threshold FLOAT NOT NULL,
	PRIMARY KEY (snapshot_id)
);

CREATE TABLE serving_lookup_records (
	snapshot_id VARCHAR(64) NOT NULL,
	unique_id VARCHAR(300) NOT NULL,
	customer_id VARCHAR(128) NOT NULL,
	first_name VARCHAR(256),
	last_name VARCHAR(256),
	email VARCHAR(256),
	phone VARCHAR(256),
	loyalty_id VARCHAR(256),
	birth_date VARCHAR(256),
	street VARCHAR(256),
	postcode VARCHAR(256),
	city VARCHAR(256),
	PRIMARY KEY (snapshot_id, unique_id)
);

CREATE TABLE serving_segment_members (
	snapshot_id VARCHAR(64) NOT NULL,
	segment VARCHAR(128) NOT NULL,
	customer_id VARCHAR(128) NOT NULL,
	family VARCHAR(64) NOT NULL,
	clv FLOAT,
	churn_probability FLOAT,
	consent BOOLEAN NOT NULL,
	PRIMARY KEY (snapshot_id, segment, customer_id)
);

CREATE TABLE serving_snapshots (
	snapshot_id VARCHAR(64) NOT NULL,
	created_at DATETIME NOT NULL,
	as_of VARCHAR(10) NOT NULL,
	models TEXT NOT NULL,
	customers INTEGER NOT NULL,
	catalogue TEXT NOT NULL,
	active BOOLEAN NOT NULL,
	PRIMARY KEY (snapshot_id)
);

CREATE TABLE api_keys (
	key_id VARCHAR(16) NOT NULL,
	name VARCHAR(64) NOT NULL,
	roles TEXT NOT NULL,
	secret_sha256 VARCHAR(64) NOT NULL,
	created_at DATETIME NOT NULL,
	revoked_at DATETIME,
	PRIMARY KEY (key_id),
	UNIQUE (secret_sha256)
);
