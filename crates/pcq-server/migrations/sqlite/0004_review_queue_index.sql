-- The review queue reads the requests in review oldest first; PostgreSQL has had this index
-- from its first schema, and the two schemas now have the same indexes.
CREATE INDEX customer_qualifications_in_review ON customer_qualifications
    (vetting_create_date, customer_id, qualification) WHERE vetting_status = 'InReview';
